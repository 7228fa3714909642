"""The hostile filter corpus (tests/hostile/filters.txt) through the gateway, to GET /api/runs AND
GET /api/simulations, as a client sends it. A refused case is a 400 with the error envelope whose
details name the position and the token (never 200, never 5xx); an allowed case answers 200 and
matches no row (an injection that escaped its value would match the rows every stack holds).
Cases too big to list are generated here."""

from __future__ import annotations

import sys
from pathlib import Path

from stage1.core.filters import MAX_FILTER_CHARS

sys.path.insert(0, str(Path(__file__).parents[1] / "hostile"))
from corpus import Case, load  # noqa: E402  (tests/hostile is data plus its loader, not a package)

LISTS = ("/api/runs", "/api/simulations")
FRAMEWORK = "invalid request"


def generated() -> list[Case]:
    return [
        Case(0, "refuse", "nesting deeper", "(" * 900 + "status = 'x'" + ")" * 900),
        Case(0, "refuse", "nesting deeper", "not " * 450 + "status = 'x'"),
        # past 10x the parser's bound the framework refuses the parameter before the parser runs (60,000
        # characters: httpx's own URL cap is 64 KiB)
        Case(0, "refuse", FRAMEWORK, "(" * 10_000 + "status = 'x'" + ")" * 10_000),
        Case(0, "refuse", FRAMEWORK, "status = '" + "x" * 60_000 + "'"),
        Case(0, "refuse", "longer than", "status = '" + "x" * MAX_FILTER_CHARS + "'"),
        Case(0, "refuse", "longer than", "x" * (MAX_FILTER_CHARS + 1)),
        Case(0, "refuse", "at most 100", "status in (" + ", ".join(["'a'"] * 10_000)[:MAX_FILTER_CHARS - 20] + ")"),
        Case(0, "refuse", "more than 50", " or ".join(["status = 'x'"] * 120)[:MAX_FILTER_CHARS]),
        Case(0, "allow", None, "status in (" + ", ".join(["'nope'"] * 100) + ")"),
        Case(0, "allow", None, " or ".join(["status = 'nope'"] * 50)),
    ]


CASES = load("filters.txt") + generated()


def test_the_corpus_runs_every_case(client):
    refused = allowed = 0
    for case in CASES:
        for path in LISTS:
            only, _, rest = case.text.partition(":")
            if only in ("runs", "simulations"):
                if path != f"/api/{only}":
                    continue
                value, param = rest, "filter"
            else:
                param = "sort" if only == "sort" else "filter"
                value = rest if only == "sort" else case.text
            r = client.get(path, params={param: value, "limit": 5})
            where = (f"filters.txt:{case.line}" if case.line else "generated", path, case.text[:100])
            assert r.status_code < 500, (*where, r.status_code, r.text[:300])
            if case.outcome == "allow":
                assert r.status_code == 200, (*where, r.text[:300])
                assert r.json()["total"] == 0, (*where, "an allowed value matched rows")
                allowed += 1
                continue
            assert r.status_code == 400, (*where, r.status_code, r.text[:300])
            body = r.json()
            assert set(body) == {"error", "details"} and body["error"], where
            if case.reason == FRAMEWORK:
                assert case.reason in body["error"], (*where, body)
                refused += 1
                continue
            assert body["details"]["parameter"] == param, (*where, body)
            if param == "filter":
                assert isinstance(body["details"]["position"], int), (*where, body)
                assert "token" in body["details"], (*where, body)
            if case.reason:
                assert case.reason.lower() in body["error"].lower(), (*where, body)
            refused += 1
    assert refused >= 150 and allowed >= 30, (refused, allowed)


def test_the_tables_are_still_there(client):
    for path in LISTS:
        r = client.get(path, params={"limit": 1})
        assert r.status_code == 200, r.text
