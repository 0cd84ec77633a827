"""Shared pytest fixtures: the llmstudio binary, the build folder and the ../shared fixtures.

Every test that needs a file from ../shared/fixtures (or $LLMS_SHARED_FIXTURES) gets it through shared_path /
optional_shared_path / the shared_fixtures fixture: a missing fixture skips the test, or fails it when
LLMS_REQUIRE_FIXTURES=1 (set by .ci/run, so CI never passes by skipping what it should have checked)."""
import os
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def _build_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("LLMS_BUILD_DIR", REPO / "build")).resolve()


def built_tool(name) -> pathlib.Path:
    """A test tool of tests/tools/ in the build folder; a missing one fails the test (it is part of `make build`)."""
    tool = _build_dir() / "tests" / "tools" / name
    if not tool.exists():
        pytest.fail(f"{tool} not built: run `make build`")
    return tool


@pytest.fixture(scope="session")
def llms_bin() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("LLMS_BIN", _build_dir() / "bin" / "llmstudio"))
    if not path.exists():
        pytest.fail(f"llmstudio binary not found at {path}: run `make build` (or set LLMS_BIN)")
    return path


def fixtures_required() -> bool:
    return os.environ.get("LLMS_REQUIRE_FIXTURES", "") not in ("", "0")


def shared_root() -> pathlib.Path:
    return pathlib.Path(os.environ.get("LLMS_SHARED_FIXTURES", REPO.parent / "shared" / "fixtures"))


def missing_fixture(path) -> None:
    """Skips the calling test for a missing ../shared fixture, or fails it when LLMS_REQUIRE_FIXTURES=1."""
    msg = f"shared fixture {path} not found (the fixtures live beside the repository, ../shared/fixtures, or at $LLMS_SHARED_FIXTURES)"
    if fixtures_required():
        pytest.fail(msg + "; LLMS_REQUIRE_FIXTURES=1 makes this a failure", pytrace=False)
    pytest.skip(msg)


def shared_path(*parts) -> pathlib.Path:
    """The fixture at shared_root()/parts; a missing one skips the test (fails under LLMS_REQUIRE_FIXTURES=1)."""
    path = shared_root().joinpath(*parts)
    if not path.exists():
        missing_fixture(path)
    return path


def optional_shared_path(*parts):
    """For a test with a built-in fallback: the fixture's path, or None when it is absent (a failure under
    LLMS_REQUIRE_FIXTURES=1, where the fallback would silently weaken the test)."""
    path = shared_root().joinpath(*parts)
    if path.exists():
        return path
    if fixtures_required():
        missing_fixture(path)
    return None


@pytest.fixture(scope="session")
def shared_fixtures() -> pathlib.Path:
    path = shared_path()
    if not path.is_dir():
        missing_fixture(path)
    return path


def run_cli(binary, *args, check=True, **kw):
    """Runs the CLI; on failure shows its stderr in the assertion."""
    proc = subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"llmstudio {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}")
    return proc
