"""Big backtest through the gateway: N trades uploaded (kind trades), imported, then loaded into
Postgres by the read that settles the simulation. Prints the import and load seconds and the
gateway's peak RSS (VmHWM) before and after, when the gateway's pid is given.

    STAGE1_ENV_FILE=.state/stage1.env STAGE1_GATEWAY_URL=http://127.0.0.1:3115 \\
        .venv/bin/python tests/benchmarks/bench_simulation_upload.py --trades 500000 --pid <gateway pid>
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))
from test_runs_from_upload import _send, _wait_job  # noqa: E402
from test_simulations_from_upload import _csv, _trades, _upload  # noqa: E402

from stage1.core.settings import get_settings  # noqa: E402


def _hwm(pid: int | None) -> str:
    if pid is None:
        return "?"
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return line.split(":", 1)[1].strip()
    return "?"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trades", type=int, default=200_000)
    ap.add_argument("--pid", type=int, default=None)
    args = ap.parse_args()
    settings = get_settings()
    url = settings.service.gateway_url
    token = httpx.post(f"{url}/api/auth/token", headers={"X-Stage1-Admin-Secret": settings.auth.admin_secret},
                       json={"name": "bench-sim", "scopes": ["read", "write", "admin"], "expires_in": 3600}).json()
    with httpx.Client(base_url=url, headers={"X-Stage1-Token": token["token"]}, timeout=600) as c:
        ds = c.post("/api/datasets", json={"dataset_slug": f"bench_{uuid.uuid4().hex[:8]}", "granularity": "1h"}).json()
        try:
            data = _csv(_trades(args.trades), ["timestamp", "side", "entry_price", "exit_price", "quantity", "pnl",
                                               "return_pct", "signal"])
            print(f"{args.trades} trades, {len(data) / 1e6:.1f} MB CSV; gateway VmHWM before: {_hwm(args.pid)}")
            up = _upload(c, data)
            sim = c.post("/api/simulations", json={"dataset_id": ds["dataset_id"],
                                                   "trades_upload_id": up["upload_id"]}).json()
            t0 = time.monotonic()
            _send(c, up, data)
            _wait_job(c, up["job_id"], timeout=900)
            t1 = time.monotonic()
            while (detail := c.get(f"/api/simulations/{sim['simulation_id']}").json())["status"] == "RUNNING":
                time.sleep(0.2)  # a read (or the sweeper) loads the trades; the others see RUNNING meanwhile
            t2 = time.monotonic()
            print(f"upload + import {t1 - t0:.1f} s; load + buckets {t2 - t1:.1f} s ({detail['status']}, "
                  f"{detail['trade_count']} trades); gateway VmHWM after: {_hwm(args.pid)}")
        finally:
            c.delete(f"/api/datasets/{ds['dataset_id']}", params={"cascade": "true", "drop_questdb": "true"})


if __name__ == "__main__":
    main()
