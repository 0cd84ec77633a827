"""The `llmstudio` console script of the wheel: finds the shared libraries of the torch (libtorch) and pyarrow
(Arrow/Parquet) that this Python imports, puts their folders on the loader path and execs the native program
(llmstudio_native/bin/llmstudio), which then is the process: signals, exit status and the terminal are its own.

Why a launcher rather than only an RPATH: an RPATH can only name folders relative to the binary, and torch is
not always in the binary's site-packages (venvs with --system-site-packages, .pth files, user site, Debian's
dist-packages). Python's own import system knows where they are. The binary's RPATH ($ORIGIN/../../torch/lib)
still serves when it is run directly from a plain venv.

libtorch's C++ ABI changes between torch releases, so the program must run with the torch it was compiled
against: a different version stops here with a message instead of an undefined-symbol crash. Nothing here
imports torch (that alone takes seconds); the packages are only located.
"""
import importlib.metadata
import importlib.util
import os
import pathlib
import sys

PACKAGE_DIR = pathlib.Path(__file__).resolve().parent
BINARY = PACKAGE_DIR / "bin" / "llmstudio"


def _build_info():
    try:
        from . import _build_info as info
    except ImportError:
        return None
    return info


def _package_dir(name):
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return pathlib.Path(list(spec.submodule_search_locations)[0])


def _installed_version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _fail(message):
    sys.stderr.write(f"error: {message}\n")
    raise SystemExit(1)


def _public(version):
    return version.split("+")[0]  # local labels (+cu130, +cpu) are not in every wheel's metadata


def _check_version(name, built, hint):
    found = _installed_version(name)
    if found is None or _package_dir(name) is None:
        _fail(f"llmstudio needs the Python package {name}=={_public(built)} (it was built against it), but this "
              f"Python ({sys.executable}) has none. hint: {hint}")
    if _public(found) != _public(built):
        _fail(f"llmstudio was built against {name} {built}, but this Python ({sys.executable}) has {name} {found}: "
              f"their native libraries are not interchangeable. hint: {hint}")


def _check_torch_variant(info, hint):
    lib = _package_dir("torch") / "lib"
    if info.TORCH_CUDA and not any(lib.glob("libtorch_cuda.*")):
        _fail(f"llmstudio was built against a CUDA build of torch ({info.TORCH_VERSION}), but the torch in {lib.parent} "
              f"is a CPU-only build (no libtorch_cuda). hint: {hint}")


def library_dirs():
    """The folders to search for libtorch/libarrow, best first."""
    dirs = []
    torch_dir = _package_dir("torch")
    if torch_dir is not None:
        dirs.append(torch_dir / "lib")
        # CUDA wheels: libtorch_cuda finds the nvidia-* wheels' libraries through its own RPATH, but the program
        # links libcudart itself; make the wheel's copy findable too (the CUDA toolkit's is used where present).
        nvidia = torch_dir.parent / "nvidia"
        if nvidia.is_dir():
            dirs += sorted(p for p in nvidia.glob("*/lib") if p.is_dir())
            dirs += sorted(p for p in nvidia.glob("*/*/lib") if p.is_dir())
    arrow_dir = _package_dir("pyarrow")
    if arrow_dir is not None:
        dirs.append(arrow_dir)
    return [str(d) for d in dirs]


def main():
    if not BINARY.is_file():
        _fail(f"the llmstudio program is missing at {BINARY}: reinstall with `pip install . --no-build-isolation` "
              f"from the LLM Studio source folder")
    info = _build_info()
    hint = ("reinstall llmstudio against this environment's packages: "
            "`pip install --force-reinstall --no-deps --no-build-isolation .` in the LLM Studio source folder")
    if info is not None and os.environ.get("LLMSTUDIO_SKIP_VERSION_CHECK") != "1":
        _check_version("torch", info.TORCH_VERSION, hint)
        _check_torch_variant(info, hint)
        if info.PYARROW_VERSION:
            _check_version("pyarrow", info.PYARROW_VERSION, hint)
    var = "DYLD_LIBRARY_PATH" if sys.platform == "darwin" else "LD_LIBRARY_PATH"
    paths = library_dirs() + [p for p in os.environ.get(var, "").split(os.pathsep) if p]
    env = dict(os.environ, **{var: os.pathsep.join(dict.fromkeys(paths))})
    os.execve(str(BINARY), [str(BINARY), *sys.argv[1:]], env)


if __name__ == "__main__":
    main()
