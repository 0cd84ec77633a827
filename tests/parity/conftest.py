"""Shared pytest fixtures: the llmstudio binary, the build folder and the ../shared fixtures."""
import os
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def _build_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("LLMS_BUILD_DIR", REPO / "build")).resolve()


@pytest.fixture(scope="session")
def llms_bin() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("LLMS_BIN", _build_dir() / "bin" / "llmstudio"))
    if not path.exists():
        pytest.fail(f"llmstudio binary not found at {path}: run `make build` (or set LLMS_BIN)")
    return path


@pytest.fixture(scope="session")
def shared_fixtures() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("LLMS_SHARED_FIXTURES", REPO.parent / "shared" / "fixtures"))
    if not path.is_dir():
        pytest.skip(f"shared fixtures not found at {path} (they live beside the repository)")
    return path


def run_cli(binary, *args, check=True, **kw):
    """Runs the CLI; on failure shows its stderr in the assertion."""
    proc = subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"llmstudio {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}")
    return proc
