"""`pip install .` end to end: builds the wheel (scikit-build-core, pyproject.toml) with scripts/build-wheel.sh
(`pip wheel . --no-build-isolation`, as `make wheel` and the Dockerfiles), installs it with `--no-index` into a
fresh venv that reuses the project .venv's torch/pyarrow through a .pth file (nothing is downloaded), and from
that venv runs `llmstudio --version`, `llmstudio env --json` and a short LoRA train whose losses must equal those
of the `make build` binary. Also checks what the wheel holds (stripped binary, relative RPATH, no build paths)
and that the launcher refuses a torch other than the one the binary was built against.

The build reuses build-wheel/ (scikit-build-core build-dir) and ccache with `make build`'s compiler and flags,
so after `make build` it mostly relinks; the time is printed. LLMS_WHEEL_DIR=<dir> uses an already built wheel.
"""
import json
import os
import pathlib
import platform
import re
import subprocess
import sys
import sysconfig
import time
import zipfile

import pytest

from conftest import REPO, run_cli
from tiny_tokenized_model import make_tokenized_model

STEPS = 4
TRAIN_SETS = ["training.epochs=1", "training.batch_size=4", "training.learning_rate=0.003", "training.lora_dropout=0.0",
              "training.evaluation_epochs=1", "tokenizer.max_length=64", "environment.seed=7"]


def _version():
    return re.search(r'^version = "([0-9.]+)"', (REPO / "pyproject.toml").read_text(), re.M)[1]


def _run(cmd, **kw):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n"
                             f"{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    prebuilt = os.environ.get("LLMS_WHEEL_DIR")
    if prebuilt:
        found = sorted(pathlib.Path(prebuilt).glob("llmstudio_native-*.whl"))
        assert found, f"LLMS_WHEEL_DIR={prebuilt} has no llmstudio_native-*.whl"
        return found[-1]
    try:
        import scikit_build_core  # noqa: F401
    except ImportError:
        pytest.fail("scikit-build-core is not installed in this Python: run `make setup-dev` "
                    "(scripts/requirements-dev.txt has it)")
    out = tmp_path_factory.mktemp("wheelhouse")
    # The script `make wheel` and the Dockerfiles run: pip wheel . --no-build-isolation, the Makefile's ccache settings.
    env = dict(os.environ, PY=sys.executable, JOBS=os.environ.get("JOBS", str(os.cpu_count() or 2)))
    start = time.time()
    _run(["bash", REPO / "scripts" / "build-wheel.sh", out], env=env, cwd=REPO)
    wheels = sorted(out.glob("llmstudio_native-*.whl"))
    assert len(wheels) == 1, f"expected one wheel in {out}, found {wheels}"
    print(f"pip wheel: {time.time() - start:.1f} s (build dir {REPO / 'build-wheel'}) -> {wheels[0].name} "
          f"({wheels[0].stat().st_size / 1e6:.1f} MB)")
    return wheels[0]


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory):
    """A fresh venv (same base interpreter) that sees this Python's site-packages through a .pth file."""
    root = tmp_path_factory.mktemp("venv")
    base = getattr(sys, "_base_executable", sys.executable)
    _run([base, "-m", "venv", root])
    py = root / "bin" / "python"
    site = pathlib.Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip())
    dev_site = sysconfig.get_path("purelib")
    (site / "llms_reuse_dev_site.pth").write_text(f"import site; site.addsitedir({dev_site!r})\n")
    # --no-index: the dependencies (torch, pyarrow) must be satisfied by what the .pth exposes; nothing downloads.
    _run([py, "-m", "pip", "install", "--no-index", "--no-cache-dir", wheel])
    return root


def test_wheel_contents(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        assert "llmstudio_native/bin/llmstudio" in names, names
        assert "llmstudio_native/launcher.py" in names and "llmstudio_native/_build_info.py" in names, names
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "llmstudio = llmstudio_native.launcher:main" in z.read(entry_points).decode()
        metadata = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        assert f"\nVersion: {_version()}\n" in metadata, "the wheel's version must be pyproject.toml's"
        assert "Requires-Python: <3.14,>=3.11" in metadata or "Requires-Python: >=3.11,<3.14" in metadata
        for extra in ("arm64-cuda", "arm64-metal", "cpu"):
            assert f"Provides-Extra: {extra}" in metadata, extra
        sources = [n for n in names if n.endswith((".cpp", ".h"))]
        assert not sources, f"C++ sources leaked into the wheel: {sources[:5]}"
        info = z.read("llmstudio_native/_build_info.py").decode()
    import torch
    assert f'TORCH_VERSION = "{torch.__version__}"' in info, info


def test_installed_binary_is_stripped_and_relocatable(venv):
    site = pathlib.Path(_run([venv / "bin" / "python", "-c",
                              "import llmstudio_native, os; print(os.path.dirname(llmstudio_native.__file__))"]
                             ).stdout.strip())
    binary = site / "bin" / "llmstudio"
    assert binary.is_file() and os.access(binary, os.X_OK)
    if sys.platform != "linux":
        pytest.skip("readelf checks are for Linux (ELF)")
    sections = _run(["readelf", "-S", "-W", binary]).stdout
    assert ".debug_info" not in sections, "the installed binary must be stripped"
    dynamic = _run(["readelf", "-d", binary]).stdout
    runpath = re.search(r"\((?:RUNPATH|RPATH)\).*\[(.*)\]", dynamic)
    assert runpath, dynamic
    print(f"installed binary {binary.stat().st_size / 1e6:.1f} MB, RUNPATH {runpath[1]}")
    assert runpath[1].split(":")[0] == "$ORIGIN/../../torch/lib", runpath[1]
    assert str(REPO) not in runpath[1], "no build-machine path in the installed RUNPATH"


def test_llmstudio_env_from_the_venv(venv, llms_bin):
    exe = venv / "bin" / "llmstudio"
    assert exe.is_file(), "pip must install the llmstudio console script into the venv's bin"
    # The one version (pyproject.toml) reaches the C++ LLMS_VERSION through CMakeLists.txt.
    assert _run([exe, "--version"]).stdout.strip() == f"llmstudio {_version()}"
    # No LD_LIBRARY_PATH from the caller: the launcher must find libtorch by itself.
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH")}
    started = time.time()
    got = json.loads(_run([exe, "env", "--json", "--device", "cpu"], env=env).stdout)
    launch_s = time.time() - started
    ref = json.loads(run_cli(llms_bin, "env", "--json", "--device", "cpu").stdout)
    import torch
    print(f"venv llmstudio env: arch {got['arch']}, libtorch {got['torch_version']}, device "
          f"{got['selected']['device']} ({launch_s:.2f} s with the launcher)")
    assert got["arch"] == platform.machine() == ref["arch"]
    assert got["torch_version"] == ref["torch_version"] == torch.__version__.split("+")[0]
    assert got["selected"]["device"] == "cpu"
    assert got["cuda"]["built"] == ref["cuda"]["built"] and got["mps"]["built"] == ref["mps"]["built"]
    # python -m works the same way.
    assert _run([venv / "bin" / "python", "-m", "llmstudio_native", "--version"]).stdout.strip() == \
        f"llmstudio {_version()}"


def _train(binary, model_dir, out, name):
    args = [binary, "train", "-c", REPO / "examples" / "cfg.yaml", "--device", "cpu", "--max-steps", STEPS]
    for s in [*TRAIN_SETS, f"llm_backbone={model_dir}", f"output_directory={out}", f"experiment_name={name}"]:
        args += ["--set", s]
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    _run(args, cwd=REPO, env=env)
    exp = out / name
    status = json.loads((exp / "status.json").read_text())
    assert status["status"] == "finished" and status["step"] == STEPS, status
    assert (exp / "adapter_model.safetensors").is_file()
    metrics = [json.loads(line) for line in (exp / "metrics.jsonl").read_text().splitlines()]
    return [m["loss"] for m in metrics if m["type"] == "train"]


def test_short_train_from_the_venv_matches_the_make_build(venv, llms_bin, tmp_path):
    model_dir = make_tokenized_model(tmp_path / "tiny")
    wheel_losses = _train(venv / "bin" / "llmstudio", model_dir, tmp_path, "wheel")
    build_losses = _train(llms_bin, model_dir, tmp_path, "build")
    assert len(wheel_losses) == len(build_losses) == STEPS
    diff = max(abs(a - b) for a, b in zip(wheel_losses, build_losses))
    print(f"train {STEPS} steps from the venv: losses {[round(x, 4) for x in wheel_losses]}; "
          f"max |diff| vs the make-build binary {diff:.3g}")
    # Same sources, same compiler flags, same libtorch, CPU, one seed: the runs agree to float rounding.
    assert diff <= 1e-5


def test_launcher_refuses_another_torch(venv):
    py = venv / "bin" / "python"
    info = pathlib.Path(_run([py, "-c", "import llmstudio_native._build_info as b; print(b.__file__)"]).stdout.strip())
    original = info.read_text()
    try:
        info.write_text(re.sub(r'TORCH_VERSION = "[^"]*"', 'TORCH_VERSION = "1.0.0"', original))
        proc = subprocess.run([str(venv / "bin" / "llmstudio"), "env"], capture_output=True, text=True)
        assert proc.returncode == 1, proc
        assert "built against torch 1.0.0" in proc.stderr and "--no-build-isolation" in proc.stderr, proc.stderr
        print(f"launcher with a mismatched torch: {proc.stderr.strip()[:160]}...")
    finally:
        info.write_text(original)
        for cache in info.parent.glob("__pycache__/_build_info*"):
            cache.unlink()
