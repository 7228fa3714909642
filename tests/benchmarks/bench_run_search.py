"""Ranking query time of GET /api/runs (filter=, sort=, cursor=) at 10k and 100k runs (on demand;
not collected by pytest).

    STAGE1_GATEWAY_URL=http://127.0.0.1:3111 .venv/bin/python tests/benchmarks/bench_run_search.py \
        [--sizes 10000 100000] [--repeat 5]

For each size: seeds that many runs with COPY into a throwaway dataset (tests/integration/search_support.py),
then times through the gateway (median of --repeat calls, limit 100) and in Postgres (EXPLAIN ANALYZE of
the very SQL the service builds): the top page by a metric within the dataset, a page 50 cursors deep,
a filtered ranking, an equality filter answered by the GIN index, and the ranking across every run in
the database. Then the same top page with a per-key expression index (created CONCURRENTLY, dropped
after) to show what one buys. Everything it creates is deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
os.environ.setdefault("STAGE1_ENV_FILE", str(REPO / ".state" / "stage1.env"))
sys.path.insert(0, str(REPO / "tests" / "integration"))

import psycopg  # noqa: E402
from search_support import drop, seed  # noqa: E402

from stage1.core import db  # noqa: E402
from stage1.core.ranking import prepare  # noqa: E402
from stage1.core.settings import get_settings  # noqa: E402
from stage1.core.where import Where  # noqa: E402
from stage1.runs import service  # noqa: E402

SHARPE_INDEX = ("create index concurrently if not exists bench_runs_sharpe on walkforward_runs ((case when "
                "jsonb_typeof(summary_metrics -> 'sharpe'::text) = 'number' then (summary_metrics ->> "
                "'sharpe'::text)::numeric end) desc nulls last, run_id)")


def token(settings) -> dict[str, str]:
    if os.environ.get("STAGE1_TOKEN"):
        return {"X-Stage1-Token": os.environ["STAGE1_TOKEN"]}
    r = httpx.post(f"{gateway()}/api/auth/token", headers={"X-Stage1-Admin-Secret": settings.auth.admin_secret},
                   json={"name": "bench-run-search", "scopes": ["read"], "expires_in": 3600}, timeout=30)
    r.raise_for_status()
    return {"X-Stage1-Token": r.json()["token"]}


def gateway() -> str:
    return os.environ.get("STAGE1_GATEWAY_URL", get_settings().service.gateway_url).rstrip("/")


def api_ms(client: httpx.Client, params: dict, repeat: int) -> tuple[float, dict]:
    times, body = [], {}
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = client.get("/api/runs", params=params)
        times.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
        body = r.json()
    return statistics.median(times), body


def sql_ms(params: dict, repeat: int) -> tuple[float, str]:
    """EXPLAIN ANALYZE of the page query list_runs builds for these parameters (median execution time)."""
    where = Where(limit=params.get("limit", 100) + 1, offset=0)
    found = prepare(service.FIELDS, where, filter_text=params.get("filter"), sort=params["sort"],
                    cursor=params.get("cursor"), legacy=service.SORTS, offset=0)
    page = (service._SUMMARY + found.rank.select() + service._FROM + found.page_clause  # noqa: SLF001
            + " order by " + found.rank.order_by + " limit %(limit)s offset %(offset)s")
    times, plan = [], ""
    with db.connection() as conn:
        for _ in range(repeat):
            row = conn.execute(psycopg.sql.SQL("explain (analyze, format json) " + page), where.params).fetchone()
            doc = row["QUERY PLAN"] if isinstance(row, dict) else row[0]
            doc = json.loads(doc) if isinstance(doc, str) else doc
            times.append(doc[0]["Execution Time"])
            plan = _nodes(doc[0]["Plan"])
    return statistics.median(times), plan


def _nodes(plan: dict) -> str:
    name = plan["Node Type"] + (f" {plan['Index Name']}" if "Index Name" in plan else "")
    kids = [_nodes(p) for p in plan.get("Plans", [])[:2]]
    return name + (f" <- {', '.join(kids)}" if kids else "")


def bench(size: int, client: httpx.Client, repeat: int) -> None:
    t0 = time.perf_counter()
    seeded = seed(size)
    print(f"\n== {size:,} runs (seeded with COPY in {time.perf_counter() - t0:.1f} s, dataset {seeded.slug})")
    own = f"dataset_slug = '{seeded.slug}'"
    try:
        top = {"filter": own, "sort": "-summary_metrics.sharpe", "limit": 100}
        _, body = api_ms(client, top, 1)
        cursor = body["next_cursor"]
        for _ in range(49):
            cursor = client.get("/api/runs", params={**top, "cursor": cursor}).json()["next_cursor"]
        cases = {
            "top 100 by -summary_metrics.sharpe (dataset)": top,
            "page 51 by cursor (dataset)": {**top, "cursor": cursor},
            "filtered: sharpe > 1.2 and max_depth = 6 and COMPLETED": {
                **top, "filter": own + " and summary_metrics.sharpe > 1.2 and hyperparameters.max_depth = 6 "
                                     "and status = 'COMPLETED'"},
            "equality only: hyperparameters.model = 'xgb' (GIN)": {
                "filter": "hyperparameters.model = 'xgb' and hyperparameters.max_depth = 6",
                "sort": "-created_at", "limit": 100},
            "top 100 by -summary_metrics.sharpe (all runs)": {"sort": "-summary_metrics.sharpe", "limit": 100},
            "top 100 by -folds.metrics.acc.mean (all runs)": {"sort": "-folds.metrics.acc.mean", "limit": 100},
        }
        for label, params in cases.items():
            api, _ = api_ms(client, params, repeat)
            sql, plan = sql_ms(params, repeat)
            print(f"  {label:58s} API {api:8.1f} ms   SQL {sql:8.1f} ms   {plan[:110]}")
        with psycopg.connect(get_settings().postgres.pg_dsn, autocommit=True) as conn:
            conn.execute(SHARPE_INDEX)
            conn.execute("analyze walkforward_runs")
        try:
            for label in ("top 100 by -summary_metrics.sharpe (all runs)",
                          "top 100 by -summary_metrics.sharpe (dataset)"):
                api, _ = api_ms(client, cases[label], repeat)
                sql, plan = sql_ms(cases[label], repeat)
                print(f"  {label + ' +expr index':58s} API {api:8.1f} ms   SQL {sql:8.1f} ms   {plan[:110]}")
        finally:
            with psycopg.connect(get_settings().postgres.pg_dsn, autocommit=True) as conn:
                conn.execute("drop index concurrently if exists bench_runs_sharpe")
    finally:
        drop(seeded)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with db.connection() as conn:
        others = conn.execute("select count(*) as n from walkforward_runs").fetchone()["n"]
    print(f"gateway {gateway()}; {others:,} runs already in the database; median of {args.repeat} calls")
    with httpx.Client(base_url=gateway(), headers=token(get_settings()), timeout=120) as client:
        for size in args.sizes:
            bench(size, client, args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
