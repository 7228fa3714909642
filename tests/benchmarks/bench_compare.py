"""Time of GET /api/runs/compare at its largest run count (on demand; not collected by pytest).

    STAGE1_GATEWAY_URL=http://127.0.0.1:3112 .venv/bin/python tests/benchmarks/bench_compare.py [--runs 50]
        [--folds 50] [--metrics 10] [--params 30]

Creates one dataset and `--runs` runs through the API (each with `--params` hyperparameters, a walk
config, `--metrics` summary metrics and `--folds` folds of `--metrics` metrics), then times the
comparison as JSON and as CSV (median of 5) and prints the table's size. Everything is deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
import uuid
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
os.environ.setdefault("STAGE1_ENV_FILE", str(REPO / ".state" / "stage1.env"))

from stage1.core.settings import get_settings  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--folds", type=int, default=50)
    ap.add_argument("--metrics", type=int, default=10)
    ap.add_argument("--params", type=int, default=30)
    args = ap.parse_args()
    settings = get_settings()
    url = settings.service.gateway_url.rstrip("/")
    token = httpx.post(f"{url}/api/auth/token", headers={"X-Stage1-Admin-Secret": settings.auth.admin_secret},
                       json={"name": "bench-compare", "scopes": ["read", "write"], "expires_in": 3600},
                       timeout=30).json()["token"]
    rng = random.Random(5)
    with httpx.Client(base_url=url, headers={"X-Stage1-Token": token}, timeout=120) as c:
        ds = c.post("/api/datasets", json={"dataset_slug": f"bench_cmp_{uuid.uuid4().hex[:8]}", "symbol": "B",
                                           "granularity": "1h"}).json()
        try:
            ids = []
            for _ in range(args.runs):
                body = {"dataset_id": ds["dataset_id"], "target_column": "y",
                        "hyperparameters": {f"p{i}": rng.choice([1, 2, 3]) for i in range(args.params)},
                        "walk_config": {"train_bars": 500, "test_bars": rng.choice([100, 200])},
                        "summary_metrics": {f"m{i}": rng.random() for i in range(args.metrics)},
                        "folds": [{"fold_number": f, "metrics": {f"m{i}": rng.random() for i in range(args.metrics)}}
                                  for f in range(args.folds)]}
                r = c.post("/api/runs", json=body)
                r.raise_for_status()
                ids.append(r.json()["run_id"])
            params = {"run_ids": ",".join(ids)}
            for fmt in ("json", "csv"):
                times, size = [], 0
                for _ in range(5):
                    t = time.perf_counter()
                    r = c.get("/api/runs/compare", params={**params, "format": fmt})
                    times.append(time.perf_counter() - t)
                    r.raise_for_status()
                    size = len(r.content)
                rows = len(r.json()["rows"]) if fmt == "json" else r.text.count("\n") - 1
                print(f"compare {args.runs} runs x {args.folds} folds ({fmt}): {rows:,} rows, {size / 1e6:.2f} MB, "
                      f"median {statistics.median(times) * 1000:.0f} ms (min {min(times) * 1000:.0f} ms)")
        finally:
            c.delete(f"/api/datasets/{ds['dataset_id']}", params={"cascade": "true", "drop_questdb": "true"})


if __name__ == "__main__":
    main()
