"""Hostile input: schemathesis generates requests from the merged OpenAPI spec (the gateway's live
/api/openapi.json, which a unit test keeps equal to docs/openapi.json) and sends them through the
gateway with a valid token (scopes read, write, admin). Passing means zero 5xx responses and zero
responses that contradict the spec (every error documented as the `{"error", "details"}` envelope).

Two runs, both bounded so `make test` stays quick:
- examples + coverage (boundary and invalid values, generated from the schemas) + fuzzing, on
  every operation, at most STAGE1_SCHEMATHESIS_EXAMPLES cases per operation per phase;
- stateful (chains of calls that reuse ids from earlier responses) over the GET operations only: on a
  shared stack a chain from a listing to a write would change other people's records (add runs to
  their datasets, revoke their tokens). Writes are fuzzed above, with ids that match nothing.
The case counts are printed. A failure report names each failing operation with a curl line to
replay it. Environment: STAGE1_SCHEMATHESIS_EXAMPLES (default 20), STAGE1_SCHEMATHESIS_SEED.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

ST = Path(sys.executable).parent / "st"
CHECKS = "not_a_server_error,response_schema_conformance,content_type_conformance,status_code_conformance"
EXAMPLES = int(os.environ.get("STAGE1_SCHEMATHESIS_EXAMPLES", "20"))
SEED = os.environ.get("STAGE1_SCHEMATHESIS_SEED", "20261123")


@pytest.fixture(scope="module")
def fuzz_token(gateway_url, settings) -> str:
    """Its own token, so the per-token rate limit of the run does not touch the session's."""
    r = httpx.post(f"{gateway_url}/api/auth/token", headers={"X-Stage1-Admin-Secret": settings.auth.admin_secret},
                   json={"name": "schemathesis", "scopes": ["read", "write", "admin"], "expires_in": 3600})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def _run(gateway_url: str, token: str, tmp_path: Path, name: str, *extra: str) -> dict:
    report = tmp_path / f"{name}.json"
    cmd = [str(ST), "run", f"{gateway_url}/api/openapi.json", "--header", f"X-Stage1-Token: {token}",
           "--checks", CHECKS, "--max-examples", str(EXAMPLES), "--seed", SEED, "--workers", "2",
           "--generation-with-security-parameters", "false", "--generation-database", "none",
           "--request-timeout", "60", "--no-color", "--report", "json", "--report-json-path", str(report), *extra]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1500, cwd=tmp_path)
    assert report.exists(), f"no report (exit {done.returncode}):\n{done.stdout[-4000:]}{done.stderr}"
    result = json.loads(report.read_text())
    result["_output"] = done.stdout
    return result


def _summary(name: str, result: dict) -> str:
    ops, cases = result["operations"], result["test_cases"]
    return (f"schemathesis {name}: {cases['generated']} cases over {ops['tested']}/{ops['selected']} operations in "
            f"{result['running_time']:.0f} s; failures {cases['with_failures']}, errors {cases['errored']}")


def _check(name: str, result: dict, capsys) -> None:
    with capsys.disabled():
        print("\n" + _summary(name, result))
    problems = result["failures"] or result["errors"] or result["test_cases"]["errored"]
    assert not problems and result["exit_code"] == 0, (
        _summary(name, result) + "\n" + result["_output"].split("=== FAILURES ===")[-1][-12000:])


def test_no_5xx_and_no_schema_violations(gateway_url, fuzz_token, tmp_path, capsys):
    result = _run(gateway_url, fuzz_token, tmp_path, "examples-coverage-fuzzing",
                  "--phases", "examples,coverage,fuzzing")
    assert result["operations"]["tested"] == result["operations"]["total"] > 0
    _check("examples+coverage+fuzzing", result, capsys)


def test_stateful_chains_of_reads(gateway_url, fuzz_token, tmp_path, capsys):
    result = _run(gateway_url, fuzz_token, tmp_path, "stateful", "--phases", "stateful", "--include-method", "GET")
    _check("stateful", result, capsys)
