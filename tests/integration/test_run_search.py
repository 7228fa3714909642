"""Search and rank runs and simulations through the gateway (GET /api/runs and /api/simulations with
filter=, sort= and cursor=), against the real Postgres: 10,000 runs seeded with COPY under a dataset
of this module's own, ranked by a metric and checked against Python's sort of the seeded values."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal

import pytest
from search_support import Seeded, drop, seed

N_RUNS = 10_000


@pytest.fixture(scope="module")
def seeded():
    data = seed(N_RUNS, n_simulations=400, fold_runs=60)
    try:
        yield data
    finally:
        drop(data)


def _scoped(seeded: Seeded, expr: str | None) -> str:
    own = f"dataset_slug = '{seeded.slug}'"
    return own if expr is None else f"{own} and ({expr})"


def _pages(client, path: str, key: str, params: dict, limit: int = 1000) -> tuple[list[str], int]:
    """Every id of a search, page by page with next_cursor; returns the ids and the page count."""
    ids, cursor, pages = [], None, 0
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        r = client.get(path, params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        ids += [row[key] for row in body[path.rsplit("/", 1)[1]]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, pages
        assert pages < 1000


def _num(value):
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _ranked(rows: list[dict], id_key: str, value: Callable[[dict], object], desc: bool) -> list[str]:
    """Python's own order of the API's rule: numbers by value, then strings, then missing; ties by id."""
    def key(row):
        raw = value(row)
        num, text = _num(raw), raw if isinstance(raw, str) else None
        return (num is None, (-num if desc else num) if num is not None else 0, text is None, row[id_key].int)
    assert all(not isinstance(value(r), str) or value(r) == "n/a" for r in rows)  # one string: its order is moot
    return [str(r[id_key]) for r in sorted(rows, key=key)]


# ------------------------------------------------------------------------------------ ranking
def test_ten_thousand_runs_ranked_by_a_metric_match_pythons_sort(client, seeded):
    expected = _ranked(seeded.runs, "run_id", lambda r: r["summary_metrics"].get("sharpe"), desc=True)
    params = {"filter": _scoped(seeded, None), "sort": "-summary_metrics.sharpe"}
    ids, pages = _pages(client, "/api/runs", "run_id", params)
    assert pages == N_RUNS // 1000
    assert len(ids) == len(set(ids)) == N_RUNS  # no duplicate, no gap, across pages cut through ties
    assert ids == expected
    # offset paging gives the same order (the first pages), and the total is the filter's count
    r = client.get("/api/runs", params={**params, "limit": 500, "offset": 1500})
    assert r.status_code == 200 and r.json()["total"] == N_RUNS
    assert [x["run_id"] for x in r.json()["runs"]] == expected[1500:2000]


def test_ascending_and_integer_keys_and_columns(client, seeded):
    asc = _ranked(seeded.runs, "run_id", lambda r: r["summary_metrics"].get("sharpe"), desc=False)
    ids, _ = _pages(client, "/api/runs", "run_id", {"filter": _scoped(seeded, None), "sort": "summary_metrics.sharpe"})
    assert ids == asc
    # an integer hyperparameter sorts numerically (10 after 9), ties by run_id
    depth = _ranked(seeded.runs, "run_id", lambda r: r["hyperparameters"]["max_depth"], desc=False)
    ids, _ = _pages(client, "/api/runs", "run_id", {"filter": _scoped(seeded, None),
                                                     "sort": "hyperparameters.max_depth"}, limit=777)
    assert ids == depth
    # a column sort with ties (created_at in groups of 100), paged with a cursor
    by_created = [str(r["run_id"]) for r in sorted(seeded.runs, key=lambda r: (-r["created_at"].timestamp(),
                                                                                 r["run_id"].int))]
    ids, _ = _pages(client, "/api/runs", "run_id", {"filter": _scoped(seeded, None), "sort": "-created_at"})
    assert ids == by_created


def test_legacy_sorts_still_answer(client, seeded):
    for sort in ("created_at", "-created_at", "started_at", "-started_at", "completed_at", "-completed_at",
                 "prediction_measurement", "-prediction_measurement", "status", "-status"):
        r = client.get("/api/runs", params={"sort": sort, "limit": 5, "dataset_id": seeded.slug})
        assert r.status_code == 200, (sort, r.text)
        assert r.json()["total"] == N_RUNS
    r = client.get("/api/runs", params={"sort": "nope", "limit": 5})
    assert r.status_code == 400 and r.json()["details"]["parameter"] == "sort"


# ------------------------------------------------------------------------------- filter semantics
def _count(client, seeded, expr: str) -> int:
    r = client.get("/api/runs", params={"filter": _scoped(seeded, expr), "limit": 1})
    assert r.status_code == 200, (expr, r.text)
    return r.json()["total"]


def _py(seeded, pred) -> int:
    return sum(1 for r in seeded.runs if pred(r))


def test_filter_semantics(client, seeded):
    hp, sm = (lambda r: r["hyperparameters"]), (lambda r: r["summary_metrics"])
    sharpe = lambda r: _num(sm(r).get("sharpe"))  # noqa: E731
    cases = {
        # numbers compare as numbers: 10 and 11 are > 9 (as text '10' < '9')
        "hyperparameters.max_depth > 9": lambda r: hp(r)["max_depth"] > 9,
        "hyperparameters.max_depth = 6": lambda r: hp(r)["max_depth"] == 6,
        "hyperparameters.max_depth = 6.0": lambda r: hp(r)["max_depth"] == 6,
        "hyperparameters.max_depth != 6": lambda r: hp(r)["max_depth"] != 6,
        "hyperparameters.max_depth in (1, 10, 11)": lambda r: hp(r)["max_depth"] in (1, 10, 11),
        "hyperparameters.max_depth not in (1, 10, 11)": lambda r: hp(r)["max_depth"] not in (1, 10, 11),
        # a string where a number was expected is no match, never an error
        "summary_metrics.sharpe > 1.2": lambda r: (sharpe(r) or -99) > 1.2,
        "summary_metrics.sharpe <= -1.5": lambda r: sharpe(r) is not None and sharpe(r) <= -1.5,
        "summary_metrics.sharpe = 'n/a'": lambda r: sm(r).get("sharpe") == "n/a",
        "summary_metrics.sharpe is null": lambda r: "sharpe" not in sm(r),
        "summary_metrics.sharpe is not null": lambda r: "sharpe" in sm(r),
        "summary_metrics.nothing is null": lambda r: True,
        # strings compare as strings
        "hyperparameters.model = 'xgb'": lambda r: hp(r)["model"] == "xgb",
        "hyperparameters.model in ('rf', 'lgbm')": lambda r: hp(r)["model"] in ("rf", "lgbm"),
        "summary_metrics.label like 'run_1%'": lambda r: sm(r)["label"].startswith("run_1"),
        "summary_metrics.label ilike 'RUN_3'": lambda r: sm(r)["label"] == "run_3",
        "summary_metrics.label not like 'run_%'": lambda r: False,
        "hyperparameters.model = 6": lambda r: False,  # a number never equals a string
        # columns, and/or/not, parentheses
        "status = 'FAILED'": lambda r: r["status"] == "FAILED",
        "status = 'COMPLETED' and hyperparameters.max_depth = 6 and summary_metrics.sharpe > 1.2":
            lambda r: r["status"] == "COMPLETED" and hp(r)["max_depth"] == 6 and (sharpe(r) or -99) > 1.2,
        "target_column = 'up' or prediction_rows < 10": lambda r: r["target_column"] == "up" or
            r["prediction_rows"] < 10,
        "not (hyperparameters.max_depth < 6) AND walk_config.train_size >= 300":
            lambda r: hp(r)["max_depth"] >= 6 and r["walk_config"]["train_size"] >= 300,
        "created_at >= '2025-01-01T00:00:50Z'": lambda r: r["created_at"].timestamp() >= 1735689650,
        "prediction_measurement like '%_r99'": lambda r: r["prediction_measurement"].endswith("_r99"),
        "started_at is null": lambda r: True,
        # fold aggregates and the fold count
        "fold_count = 3": lambda r: "folds" in r,
        "folds.metrics.acc.mean > 0.6": lambda r: "folds" in r and  # exact decimals, as Postgres's numeric
            sum(Decimal(str(f["acc"])) for f in r["folds"]) / 3 > Decimal("0.6"),
        "folds.metrics.acc.max >= 0.8 and folds.metrics.acc.min < 0.5":
            lambda r: "folds" in r and max(f["acc"] for f in r["folds"]) >= 0.8 and
            min(f["acc"] for f in r["folds"]) < 0.5,
        "folds.metrics.acc.mean is null": lambda r: "folds" not in r,
    }
    wrong = {expr: (_count(client, seeded, expr), _py(seeded, pred)) for expr, pred in cases.items()}
    wrong = {k: v for k, v in wrong.items() if v[0] != v[1]}
    assert not wrong, wrong


def test_fold_aggregate_sort(client, seeded):
    with_folds = [r for r in seeded.runs if "folds" in r]
    expected = [str(r["run_id"]) for r in sorted(
        with_folds, key=lambda r: (-max(f["acc"] for f in r["folds"]), r["run_id"].int))]
    ids, _ = _pages(client, "/api/runs", "run_id", {"filter": _scoped(seeded, "fold_count > 0"),
                                                     "sort": "-folds.metrics.acc.max"}, limit=7)
    assert ids == expected


def test_the_cursor_is_bound_to_its_sort_and_filter(client, seeded):
    params = {"filter": _scoped(seeded, None), "sort": "-summary_metrics.sharpe", "limit": 10}
    cursor = client.get("/api/runs", params=params).json()["next_cursor"]
    assert cursor
    for change in ({"sort": "summary_metrics.sharpe"}, {"filter": _scoped(seeded, "status = 'FAILED'")}):
        r = client.get("/api/runs", params={**params, **change, "cursor": cursor})
        assert r.status_code == 400 and r.json()["details"]["parameter"] == "cursor", r.text
    for bad in ("garbage", "eyJ4IjoxfQ", "A" * 5000, cursor[:-3]):
        r = client.get("/api/runs", params={**params, "cursor": bad})
        assert r.status_code == 400, (bad[:20], r.text)
    r = client.get("/api/runs", params={**params, "cursor": cursor, "offset": 10})
    assert r.status_code == 400


# ------------------------------------------------------------------------------- bad expressions
@pytest.mark.parametrize(("expr", "position", "token"), [
    ("status = 'COMPLETED", 9, "'COMPLETED"),  # unterminated string
    ("summary_metrics.sharpe > 1 and bogus = 2", 31, "bogus"),  # unknown field
    ("status == 'x'", 8, "="),  # bad operator: '=' then a stray '='
    ("status ~ 'x'", 7, "~"),
    ("summary_metrics.sharpe >", 24, ""),  # ends early
    ("summary_metrics.sharpe > 1 status = 'x'", 27, "status"),
    ("hyperparameters.max_depth in ()", 30, ")"),
    ("prediction_rows > 'ten'", 18, "'ten'"),
    ("created_at > 'yesterday'", 13, "'yesterday'"),
    ("dataset_id = 'not-a-uuid'", 13, "'not-a-uuid'"),
    ("summary_metrics.a-b = 1", 17, "-"),
    ("folds.metrics.acc.median > 1", 0, "folds.metrics.acc.median"),
    ("x" * 2001, 2000, "x"),  # too long
    ("(" * 9 + "status = 'x'" + ")" * 9, 8, "("),  # nested too deep
    ("status in (" + ", ".join(["'a'"] * 101) + ")", 511, "'a'"),  # in list too long
])
def test_bad_expressions_name_the_position(client, expr, position, token):
    for path in ("/api/runs", "/api/simulations"):
        if path == "/api/simulations" and ("folds" in expr or "prediction" in expr or "hyperparameters" in expr):
            continue
        r = client.get(path, params={"filter": expr, "limit": 1})
        assert r.status_code == 400, (path, expr[:60], r.text)
        body = r.json()
        assert set(body) == {"error", "details"}
        assert body["details"]["position"] == position, body
        assert body["details"]["token"] == token, body
        assert f"position {position}" in body["error"]


def test_too_many_conditions(client):
    expr = " and ".join(["status = 'x'"] * 51)
    r = client.get("/api/runs", params={"filter": expr})
    assert r.status_code == 400 and "more than 50" in r.json()["error"]


# -------------------------------------------------------------------------------- simulations
def test_simulations_search_rank_and_cursor(client, seeded):
    sims = seeded.simulations
    expected = _ranked(sims, "simulation_id", lambda s: s["summary_metrics"].get("pnl"), desc=True)
    ids, pages = _pages(client, "/api/simulations", "simulation_id",
                        {"filter": _scoped(seeded, None), "sort": "-summary_metrics.pnl"}, limit=37)
    assert ids == expected and pages == -(-len(sims) // 37)
    cases = {
        "config.fee_bps >= 3 and config.side = 'long'": lambda s: s["config"]["fee_bps"] >= 3 and
            s["config"]["side"] == "long",
        "summary_metrics.pnl is null or trade_count < 10": lambda s: "pnl" not in s["summary_metrics"] or
            s["trade_count"] < 10,
        "name in ('sim_1', 'sim_2') and summary_metrics.win_rate > 0.5":
            lambda s: s["name"] in ("sim_1", "sim_2") and s["summary_metrics"].get("win_rate", 0) > 0.5,
    }
    for expr, pred in cases.items():
        r = client.get("/api/simulations", params={"filter": _scoped(seeded, expr), "limit": 1})
        assert r.status_code == 200, r.text
        assert r.json()["total"] == sum(1 for s in sims if pred(s)), expr
    r = client.get("/api/simulations", params={"filter": "hyperparameters.x = 1"})
    assert r.status_code == 400 and "unknown field" in r.json()["error"]
    assert uuid.UUID(ids[0])
