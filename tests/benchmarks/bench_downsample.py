"""The chart-resolution read of a 10M-row series (issue 13): on demand, not collected by pytest.

    STAGE1_GATEWAY_URL=http://127.0.0.1:3114 .venv/bin/python tests/benchmarks/bench_downsample.py
        [--rows 10000000] [--points 2000] [--repeat 7]

Creates a `rows`-row OHLCV table in QuestDB server-side (`long_sequence`, one bar a minute), registers it
to a throwaway dataset through the API (POST /api/datasets naming the table), then times
GET /api/datasets/{id}/ohlcv?max_points=N through the gateway (median of `repeat` after one warm-up) over
the full range and over a zoomed range (a tenth of it), each read from the table itself and from the
hourly rollup the first read asks QuestDB to build (`stage1.timeseries.rollup`; used when the window is
on whole hours), next to the bare QuestDB SAMPLE BY over the table, and prints the figures and the
machine's load. Drops the dataset, the rollup and the table at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
os.environ.setdefault("STAGE1_ENV_FILE", str(REPO / ".state" / "stage1.env"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_resources import token  # noqa: E402

from stage1.core.questdb import get_questdb, quote  # noqa: E402
from stage1.core.settings import get_settings  # noqa: E402
from stage1.timeseries import rollup  # noqa: E402
from stage1.timeseries.wal import wait_applied  # noqa: E402

START = 1_577_836_800  # 2020-01-01T00:00:00Z
TARGET_MS = 300.0


def create_table(table: str, rows: int, batch: int = 1_000_000) -> float:
    """The table (WAL, as the service's own tables), filled server-side in INSERT ... SELECT batches, applied
    and its row count checked before anything is timed."""
    started = time.perf_counter()
    qdb = get_questdb()
    qdb.exec(f"create table {quote(table)} (timestamp timestamp, open double, high double, low double, "
             "close double, volume double) timestamp(timestamp) partition by month", timeout=60)
    for first in range(0, rows, batch):
        n = min(batch, rows - first)
        qdb.exec(f"insert into {quote(table)} select timestamp_sequence({(START + first * 60) * 1_000_000}, "
                 "60000000L), rnd_double() * 100 + 1000, rnd_double() * 100 + 1100, rnd_double() * 100 + 900, "
                 f"rnd_double() * 100 + 1000, rnd_double() * 1000 from long_sequence({int(n)})", timeout=600)
    wait_applied(table, timeout=600)  # a partitioned table is a WAL table: rows are applied asynchronously
    count = qdb.exec(f"select count() as n from {quote(table)}", timeout=60).rows()[0]["n"]
    if count != rows:
        raise SystemExit(f"{table} holds {count} rows, not {rows}")
    return time.perf_counter() - started


def timed(fn, repeat: int) -> tuple[float, list[float]]:
    fn()  # warm-up: page cache, the gateway's connections
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), times


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    settings = get_settings()
    base = os.environ.get("STAGE1_GATEWAY_URL", settings.service.gateway_url).rstrip("/")
    suffix = uuid.uuid4().hex[:8]
    slug, table = f"bench_ds_{suffix}", f"bench_ds_{suffix}_ohlcv"
    client = httpx.Client(base_url=base, headers=token(settings), timeout=120)
    print(f"gateway {base}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    try:
        print(f"created {args.rows:,} rows server-side in {create_table(table, args.rows):.1f} s ({table})")
        r = client.post("/api/datasets", json={"dataset_slug": slug, "symbol": "BENCH", "granularity": "1m",
                                               "ohlcv_measurement": table})
        r.raise_for_status()
        dataset_id = r.json()["dataset_id"]
        last = START + (args.rows - 1) * 60
        first_call = client.get(f"/api/datasets/{dataset_id}/ohlcv", params={"max_points": args.points})
        first_call.raise_for_status()  # from the table; it asks QuestDB to build the hourly rollup
        started = time.perf_counter()
        columns = ["open", "high", "low", "close", "volume"]
        while rollup.fresh_view(table, "timestamp", columns) is None:
            if time.perf_counter() - started > 300:
                raise SystemExit("the hourly rollup did not catch up in 300 s")
            time.sleep(0.2)
        print(f"hourly rollup {rollup.view_name(table)} caught up {time.perf_counter() - started:.1f} s after the "
              "first read")
        hour = 3600
        z0 = START + (last - START) * 4 // 10 // hour * hour
        z1 = START + (last - START) * 5 // 10 // hour * hour - 1
        cases = {
            "full range, from the table (from = first + 1 s, not on an hour)": {"from": START + 1},
            "full range, from the hourly rollup": {},
            "zoomed (1/10 of the range, on hours), from the rollup": {"from": z0, "to": z1},
            "zoomed (1/10 of the range, off the hour), from the table": {"from": z0 + 7, "to": z1},
        }
        for label, window in cases.items():
            params = {"max_points": args.points, **window}

            def call(params=params) -> httpx.Response:
                resp = client.get(f"/api/datasets/{dataset_id}/ohlcv", params=params)
                if resp.status_code != 200:  # e.g. QuestDB's statement timeout on an overloaded machine
                    raise SystemExit(f"HTTP {resp.status_code}: {resp.text[:500]}")
                return resp

            body = call().json()
            assert len(body["rows"]) <= args.points and body["downsampled"], body.keys()
            median, times = timed(call, args.repeat)
            verdict = "OK" if median < TARGET_MS else "ABOVE TARGET"
            runs = ", ".join(f"{t:.0f}" for t in times)
            print(f"{label}: {len(body['rows'])} points of {body['bucket_seconds']} s "
                  f"({body['rows'][0]['timestamp']}..{body['rows'][-1]['timestamp']}); endpoint median "
                  f"{median:.0f} ms (runs {runs}; target < {TARGET_MS:.0f} ms: {verdict})")
        width = first_call.json()["bucket_seconds"]
        sql = (f"select timestamp, first(open), max(high), min(low), last(close), sum(volume) from {quote(table)} "
               f"sample by {width}s")
        bare, _ = timed(lambda: get_questdb().exec(sql, timeout=60), args.repeat)
        print(f"bare QuestDB SAMPLE BY {width}s over the whole table: median {bare:.0f} ms")
        plain, _ = timed(lambda: client.get(f"/api/datasets/{dataset_id}/ohlcv", params={"limit": args.points})
                         .raise_for_status(), args.repeat)
        print(f"reference: one raw page of {args.points} rows (no max_points), median {plain:.0f} ms")
    finally:
        client.delete(f"/api/datasets/{slug}", params={"cascade": "true", "drop_questdb": "true"})
        rollup.drop_view(table, timeout=60)
        get_questdb().exec(f"drop table if exists {quote(table)}", timeout=60)
        client.close()
        print(f"cleaned up ({slug}, {table}); load average now {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
