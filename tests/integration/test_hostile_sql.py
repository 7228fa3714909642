"""The hostile SQL corpus (tests/hostile/sql.txt) through the gateway, as a client sends it: every
case to POST /api/questdb/query AND /api/questdb/export. A refused case is a 400 with the error
envelope (never 200, never 5xx); an allowed case answers 200. Generated cases (too big or too many
to list) are built here: every refused function in five spellings, a statement over the size cap,
deep brackets, many comments."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from stage1.sql.functions import REFUSED_FUNCTIONS
from stage1.sql.readonly import MAX_SQL_CHARS

sys.path.insert(0, str(Path(__file__).parents[1] / "hostile"))
from corpus import Case, load  # noqa: E402  (tests/hostile is data plus its loader, not a package)

ENDPOINTS = ("/api/questdb/query", "/api/questdb/export")


def generated() -> list[Case]:
    cases = []
    for name in sorted(REFUSED_FUNCTIONS):
        for sql in (f"select * from {name}()", f"select * from {name}", f'select * from "{name}"',
                    f"select * from '{name}'", f"select 1 --\r, {name}()"):
            cases.append(Case(0, "refuse", name.split(".")[0], sql))
    cases += [
        Case(0, "refuse", "longer than", "select 1" + " " * MAX_SQL_CHARS),
        Case(0, "refuse", "longer than", "select '" + "x" * MAX_SQL_CHARS + "'"),
        Case(0, "refuse", "nested deeper", "select " + "(" * 65 + "1" + ")" * 65),
        Case(0, "refuse", "nested deeper", "select " + "(" * 10_000 + "1" + ")" * 10_000),
        Case(0, "refuse", "files", "select 1 " + "/**/" * 20_000 + " from files('/')"),
        Case(0, "refuse", "files", "select 1 " + "--\n" * 30_000 + "--\r from files('/')"),
        Case(0, "allow", None, "select " + "(" * 64 + "1" + ")" * 64),
        Case(0, "allow", None, "select 1 " + "--\n" * 5_000),
    ]
    return cases


CASES = load("sql.txt") + generated()


def test_the_corpus_runs_every_case(client):
    refused = allowed = 0
    for case in CASES:
        for endpoint in ENDPOINTS:
            r = client.post(endpoint, json={"sql": case.text})
            where = (f"sql.txt:{case.line}" if case.line else "generated", endpoint, case.text[:120])
            assert r.status_code < 500, (*where, r.status_code, r.text[:300])
            if case.outcome == "allow":
                assert r.status_code == 200, (*where, r.status_code, r.text[:300])
                allowed += 1
                continue
            assert r.status_code == 400, (*where, r.status_code, r.text[:300])
            body = r.json()
            assert body["error"] and isinstance(body["details"], dict), where
            if case.reason:
                assert case.reason.lower() in str(body["details"]).lower(), (*where, body)
            refused += 1
    print(f"\nhostile SQL corpus: {len(CASES)} cases ({refused // 2} refused, {allowed // 2} allowed) "
          f"x {len(ENDPOINTS)} endpoints = {refused + allowed} requests")
    assert refused + allowed == 2 * len(CASES)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_the_cr_comment_bypass_of_issue_11_is_closed(client, endpoint):
    """Before the fix these answered 200 with the server's directory listing / other sessions' SQL."""
    for sql in ("select * --\r from files('/etc')", "select * --\r from query_activity()",
                "select 1 --\r, reload_config()", "select * from query_activity"):
        r = client.post(endpoint, json={"sql": sql})
        assert r.status_code == 400, (sql, r.status_code, r.text[:300])
        assert "not allowed" in r.json()["details"]["reason"]


def test_a_statement_too_long_for_an_export_url_is_a_400_not_a_500(client):
    """Found by the corpus: 30,000 comments pass the guard, but /exp takes the SQL in its URL and
    httpx raised InvalidURL (a 500). The query path (PGWire) still runs it."""
    sql = "select 1 x " + "--\n" * 30_000
    assert client.post("/api/questdb/query", json={"sql": sql}).status_code == 200
    for mode in ("auto", "inline", "job"):
        r = client.post("/api/questdb/export", params={"mode": mode}, json={"sql": sql})
        assert r.status_code == 400, (mode, r.status_code, r.text[:300])
        assert r.json()["details"]["limit_bytes"] == 60_000
