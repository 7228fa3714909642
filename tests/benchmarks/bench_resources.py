"""Throughput of the issue-3 write and read paths through a gateway (on demand; not collected by pytest).

    STAGE1_GATEWAY_URL=http://127.0.0.1:3101 .venv/bin/python tests/benchmarks/bench_resources.py [--rows-json 60000]
        [--rows-csv 150000] [--trades 20000]

Measures, against the running stack: POST /api/runs with inline JSON predictions and with CSV text
(both must fit API Gateway's 10 MB body and finish well inside its ~30 s), the predictions read back
as JSON pages (10,000 rows each) and as one CSV, POST /api/simulations with many trades, and the trades
read back. Everything it creates is deleted at the end. Targets (TARGETS) are printed beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import uuid
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
os.environ.setdefault("STAGE1_ENV_FILE", str(REPO / ".state" / "stage1.env"))

from stage1.core.settings import get_settings  # noqa: E402

START, HOUR = 1_704_067_200, 3600
TARGETS = {"post_run_s": 10.0, "post_simulation_s": 5.0}


def token(settings) -> dict[str, str]:
    if os.environ.get("STAGE1_TOKEN"):
        return {"X-Stage1-Token": os.environ["STAGE1_TOKEN"]}
    if not settings.auth.auth_enabled:
        return {}
    sys.path.insert(0, str(REPO / "local"))
    from stage1_local.bootstrap import default_secrets_file, ensure_token

    return {"X-Stage1-Token": ensure_token(default_secrets_file())[0]}


def rows(n: int) -> list[dict]:
    rng = random.Random(7)
    return [{"timestamp": START + i * HOUR, "bar_index": i, "fold_number": i * 5 // n, "prediction": rng.random(),
             "target": float(rng.randint(0, 1)), "threshold_0": float(rng.random() > .5),
             "threshold_1": float(rng.random() > .6), "threshold_2": float(rng.random() > .7)} for i in range(n)]


def timed(label: str, fn, results: dict):
    t0 = time.perf_counter()
    out = fn()
    results[label] = time.perf_counter() - t0
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows-json", type=int, default=55_000)
    parser.add_argument("--rows-csv", type=int, default=150_000)
    parser.add_argument("--trades", type=int, default=20_000)
    args = parser.parse_args()
    settings = get_settings()
    base = os.environ.get("STAGE1_GATEWAY_URL", settings.service.gateway_url)
    res: dict[str, float] = {}
    with httpx.Client(base_url=base, headers=token(settings), timeout=120) as c:
        slug = f"bench_{uuid.uuid4().hex[:8]}"
        ds = c.post("/api/datasets", json={"dataset_slug": slug, "granularity": "1h"}).json()
        try:
            pj = rows(args.rows_json)
            body = json.dumps({"dataset_id": ds["dataset_id"], "folds": [{"fold_number": k} for k in range(5)],
                               "predictions": pj}).encode()
            r = timed("post_run_json", lambda: c.post("/api/runs", content=body,
                                                      headers={"content-type": "application/json"}), res)
            assert r.status_code == 201, r.text[:300]
            run = r.json()
            pc = rows(args.rows_csv)
            cols = list(pc[0])
            csv_text = ",".join(cols) + "\n" + "\n".join(",".join(str(p[k]) for k in cols) for p in pc) + "\n"
            r2 = timed("post_run_csv", lambda: c.post("/api/runs", json={
                "dataset_id": ds["dataset_id"], "predictions_csv": csv_text}), res)
            assert r2.status_code == 201, r2.text[:300]
            run_csv = r2.json()

            def read_pages() -> int:
                n, offset = 0, 0
                while offset is not None:
                    page = c.get(f"/api/runs/{run_csv['run_id']}/predictions",
                                 params={"limit": 10_000, "offset": offset}).json()
                    n += len(page["predictions"])
                    offset = page["next_offset"]
                return n

            got = timed("read_json_pages", read_pages, res)
            assert got == args.rows_csv
            r4 = timed("read_csv", lambda: c.get(f"/api/runs/{run_csv['run_id']}/predictions",
                                                 params={"format": "csv", "mode": "inline"}), res)
            assert r4.status_code == 200, r4.text[:300]
            csv_bytes = r4.content
            assert csv_bytes.count(b"\n") == args.rows_csv + 1, csv_bytes[:300]
            rng = random.Random(3)
            trades = [{"bar_timestamp": START + rng.randrange(10**5) * HOUR, "side": rng.choice(["long", "short"]),
                       "entry_price": 100.0, "exit_price": 100 + rng.uniform(-2, 2), "quantity": 1.0,
                       "pnl": rng.uniform(-2, 2), "return_pct": rng.uniform(-2, 2)} for _ in range(args.trades)]
            r3 = timed("post_simulation", lambda: c.post("/api/simulations", json={
                "run_id": run["run_id"], "trades": trades}), res)
            assert r3.status_code == 201, r3.text[:300]
            sim = r3.json()
            r5 = timed("read_trades_csv", lambda: c.get(f"/api/simulations/{sim['simulation_id']}/trades",
                                                        params={"format": "csv", "mode": "inline"}), res)
            assert r5.status_code == 200 and r5.content.count(b"\n") == args.trades + 1, r5.text[:300]
        finally:
            c.delete(f"/api/datasets/{slug}", params={"cascade": "true", "drop_questdb": "true"})
    print(f"POST /api/runs, {args.rows_json:,} JSON rows ({len(body) / 1e6:.1f} MB): {res['post_run_json']:.2f} s "
          f"({args.rows_json / res['post_run_json']:,.0f} rows/s; target < {TARGETS['post_run_s']} s)")
    print(f"POST /api/runs, {args.rows_csv:,} CSV rows ({len(csv_text) / 1e6:.1f} MB): {res['post_run_csv']:.2f} s "
          f"({args.rows_csv / res['post_run_csv']:,.0f} rows/s; target < {TARGETS['post_run_s']} s)")
    print(f"GET predictions, JSON pages of 10,000: {args.rows_csv:,} rows in {res['read_json_pages']:.2f} s "
          f"({args.rows_csv / res['read_json_pages']:,.0f} rows/s)")
    print(f"GET predictions, CSV: {len(csv_bytes) / 1e6:.1f} MB in {res['read_csv']:.2f} s "
          f"({args.rows_csv / res['read_csv']:,.0f} rows/s)")
    print(f"POST /api/simulations, {args.trades:,} trades: {res['post_simulation']:.2f} s "
          f"(target < {TARGETS['post_simulation_s']} s); trades CSV back in {res['read_trades_csv']:.2f} s")
    ok = res["post_run_json"] < TARGETS["post_run_s"] and res["post_run_csv"] < TARGETS["post_run_s"] and (
        res["post_simulation"] < TARGETS["post_simulation_s"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
