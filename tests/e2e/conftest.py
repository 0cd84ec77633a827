"""Fixtures of the end-to-end tests: the same as tests/parity's (the llmstudio binary from LLMS_BIN or
<LLMS_BUILD_DIR or build>/bin/llmstudio, run_cli), and tests/parity on sys.path for its tiny models.
Both folders' conftest modules are named `conftest`, so when one pytest run collects both, either may be the
module that `from conftest import run_cli` finds: this one re-exports the parity one's names."""
import importlib.util
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "parity"))  # tiny_chat_model, tiny_models

_spec = importlib.util.spec_from_file_location("llms_parity_conftest", REPO / "tests" / "parity" / "conftest.py")
_parity = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_parity)
llms_bin = _parity.llms_bin
shared_fixtures = _parity.shared_fixtures
run_cli = _parity.run_cli
