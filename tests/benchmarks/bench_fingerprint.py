"""The content fingerprint of a 10M-row OHLCV table (issue 13, "which data a run saw"): on demand,
not collected by pytest.

    .venv/bin/python tests/benchmarks/bench_fingerprint.py [--rows 10000000] [--repeat 5] [--indicators 20]

Builds a `rows`-row OHLCV table in QuestDB server-side (`long_sequence`, one bar a minute, the same
DDL as an import's target: WAL, DEDUP UPSERT KEYS(timestamp), PARTITION BY MONTH), then times
`stage1.timeseries.fingerprint.fingerprint` (median of `repeat` after one warm-up): the OHLCV table,
and (with --indicators N) an indicator table of N double columns. Also times the bare
`count()/min/max` scan for comparison, changes one close and checks the digest moves, re-inserts the
same row and checks it comes back. Prints figures and the machine's load; drops its tables at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
os.environ.setdefault("STAGE1_ENV_FILE", str(REPO / ".state" / "stage1.env"))

from stage1.core.questdb import get_questdb, quote  # noqa: E402
from stage1.timeseries.fingerprint import fingerprint  # noqa: E402
from stage1.timeseries.kinds import Kind, create_table_sql, drop_table  # noqa: E402
from stage1.timeseries.wal import wait_applied  # noqa: E402

START_US = 1_577_836_800_000_000  # 2020-01-01T00:00:00Z
TIMEOUT = 600.0


def build(table: str, rows: int, columns: dict[str, str]) -> float:
    started = time.perf_counter()
    q = get_questdb()
    q.exec(create_table_sql(Kind.INDICATORS if "open" not in columns else Kind.OHLCV, table, "1m"))
    for name in columns:
        q.exec(f"ALTER TABLE {quote(table)} ADD COLUMN IF NOT EXISTS {quote(name, 'column')} DOUBLE")
    select = ", ".join(f"{expr} {name}" for name, expr in columns.items())
    q.exec(f"INSERT INTO {quote(table)} (timestamp, {', '.join(columns)}) SELECT "  # noqa: S608 - bench names
           f"timestamp_sequence(cast({START_US} as timestamp), 60000000L) timestamp, {select} "
           f"FROM long_sequence({int(rows)})", timeout=TIMEOUT)
    wait_applied(table, timeout=TIMEOUT)
    return time.perf_counter() - started


def timed(fn, repeat: int) -> tuple[float, list[float]]:
    fn()  # warm-up
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs), runs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--indicators", type=int, default=0, help="also an indicator table of N double columns")
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:8]
    ohlcv = f"zz_bench_fp_{tag}"
    tables = [ohlcv]
    try:
        cols = {"open": "rnd_double() * 100", "high": "rnd_double() * 100", "low": "rnd_double() * 100",
                "close": "rnd_double() * 100", "volume": "rnd_double() * 1e6"}
        print(f"built {args.rows:,} OHLCV rows in {build(ohlcv, args.rows, cols):.1f} s")
        q = get_questdb()
        scan, _ = timed(lambda: q.exec(f"select count(), min(timestamp), max(timestamp) from {quote(ohlcv)}",
                                       timeout=TIMEOUT), args.repeat)
        median, runs = timed(lambda: fingerprint(ohlcv, timeout=TIMEOUT), args.repeat)
        listed = ", ".join(f"{r:.2f}" for r in runs)
        print(f"ohlcv fingerprint: median {median:.2f} s over {args.repeat} (runs {listed}); "
              f"{median / args.rows * 1e9:.0f} ns/row; bare count/min/max scan {scan * 1000:.0f} ms")
        before = fingerprint(ohlcv, timeout=TIMEOUT)
        row = q.exec(f"select timestamp, open, high, low, close, volume from {quote(ohlcv)} "  # noqa: S608
                     "limit 123456, 123457").dataset[0]
        ts, o, h, low, c, v = row
        insert = (f"insert into {quote(ohlcv)} (timestamp, open, high, low, close, volume) values "  # noqa: S608
                  f"('{ts}', {o!r}, {h!r}, {low!r}, {{close!r}}, {v!r})")
        q.exec(insert.format(close=c + 0.01))
        wait_applied(ohlcv, timeout=TIMEOUT)
        moved = fingerprint(ohlcv, timeout=TIMEOUT)
        q.exec(insert.format(close=c))
        wait_applied(ohlcv, timeout=TIMEOUT)
        back = fingerprint(ohlcv, timeout=TIMEOUT)
        print(f"one close +0.01: digest changed={moved.digest != before.digest}; "
              f"restored: digest equal={back.digest == before.digest}; rows {back.rows:,}")
        if args.indicators:
            ind = f"zz_bench_fpi_{tag}"
            tables.append(ind)
            icols = {f"ind_{k}": f"rnd_double() * {k + 1}" for k in range(args.indicators)}
            print(f"built {args.rows:,} rows x {args.indicators} indicators in {build(ind, args.rows, icols):.1f} s")
            median, runs = timed(lambda: fingerprint(ind, timeout=TIMEOUT), max(1, args.repeat // 2))
            print(f"indicator fingerprint ({args.indicators} columns): median {median:.2f} s")
        print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} on {os.cpu_count()} cores")
    finally:
        for table in tables:
            drop_table(table)


if __name__ == "__main__":
    main()
