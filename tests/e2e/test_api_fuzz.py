"""Fuzzes the studio's API from its OpenAPI description (docs/openapi.yaml) with schemathesis: valid and invalid
requests for every operation (examples, coverage and fuzzing phases, a bounded number of cases, under 2 minutes)
against a real `llmstudio ui` protected by a token. Beyond "no 5xx", the server and the description must agree:
documented status codes, content types, response schemas and headers; invalid data rejected with a 4xx; 401
without the token; an undeclared method on a known path answered 405 with an Allow header that lists exactly the
declared methods. The server must still answer afterwards."""
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from studio_proc import REPO, Studio
from tiny_tokenized_model import make_tokenized_model

SCHEMATHESIS = pathlib.Path(sys.executable).parent / "schemathesis"
if not SCHEMATHESIS.exists():
    pytest.skip("schemathesis not installed (scripts/requirements-dev.txt)", allow_module_level=True)


# positive_data_acceptance is left out: schema-valid requests can still be refused for what they name (an
# uploaded PNG is not a table, an unknown model), which a schema cannot express.
CHECKS = ["not_a_server_error", "status_code_conformance", "content_type_conformance", "response_schema_conformance",
          "response_headers_conformance", "negative_data_rejection", "missing_required_header", "ignored_auth",
          "unsupported_method", "allow_header_conformance"]


def test_openapi_fuzz_conformance(llms_bin, tmp_path):
    allowed = tmp_path / "allowed"
    make_tokenized_model(allowed / "tiny")
    shutil.copy(REPO / "examples" / "data" / "train.csv", allowed / "train.csv")
    s = Studio(llms_bin, tmp_path / "data", allow=[allowed], token="fuzz-token", extra=["--max-upload-mb", "1"])
    try:
        # Something to find: a dataset and an experiment (not started).
        ds = s.upload().json()
        s.post("/api/experiments", json={"dataset_id": ds["id"], "llm_backbone": str(allowed / "tiny")})
        cmd = [str(SCHEMATHESIS), "run", str(REPO / "docs" / "openapi.yaml"), "--url", s.url,
               "--checks", ",".join(CHECKS), "--header", "Authorization: Bearer fuzz-token",
               # One worker: parallel workers hit internal errors of hypothesis (not of the server) in this version.
               "--phases", "examples,coverage,fuzzing", "--max-examples", "12", "--max-time", "80",
               "--workers", "1", "--request-timeout", "30", "--seed", "7", "--generation-database", "none",
               "--exclude-path-regex", "/events$"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=tmp_path,
                              env={**os.environ, "NO_COLOR": "1"})
        print(proc.stdout[-6000:])
        assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-2000:]
        assert s.proc.poll() is None, "the studio crashed under the fuzz run:\n" + s.output()[-4000:]
        assert s.get("/api/health").status_code == 200
    finally:
        s.stop()
