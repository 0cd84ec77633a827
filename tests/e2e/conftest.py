"""Fixtures of the end-to-end tests: the same as tests/parity's (the llmstudio binary from LLMS_BIN or
<LLMS_BUILD_DIR or build>/bin/llmstudio, run_cli), and tests/parity on sys.path for its tiny models.
Both folders' conftest modules are named `conftest`, so when one pytest run collects both, either may be the
module that `from conftest import run_cli` finds: this one re-exports the parity one's names.
Also the studio the API tests share per module: a tiny tokenized model under an --allow-path folder
(`models_root`) and a `llmstudio ui` process allowed to read it (`studio`), which must still be alive at the end."""
import importlib.util
import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "parity"))  # tiny_chat_model, tiny_models

_spec = importlib.util.spec_from_file_location("llms_parity_conftest", REPO / "tests" / "parity" / "conftest.py")
_parity = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_parity)
llms_bin = _parity.llms_bin
shared_fixtures = _parity.shared_fixtures
shared_path, optional_shared_path = _parity.shared_path, _parity.optional_shared_path
run_cli = _parity.run_cli


@pytest.fixture(scope="module")
def models_root(tmp_path_factory):
    from tiny_tokenized_model import make_tokenized_model
    root = tmp_path_factory.mktemp("models")
    make_tokenized_model(root / "tiny")
    return root


@pytest.fixture(scope="module")
def studio(llms_bin, models_root, tmp_path_factory):
    from studio_proc import Studio
    s = Studio(llms_bin, tmp_path_factory.mktemp("studio") / "data", allow=[models_root])
    yield s
    assert s.proc.poll() is None, f"studio died:\n{s.output()[-3000:]}"
    s.stop()
