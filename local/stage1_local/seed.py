"""Seed data for a newcomer: two datasets with OHLCV and indicator rows, two walk-forward runs with
folds and predictions, two simulations with trades. Idempotent: run it as often as you like.

Everything goes through the HTTP API at the gateway (`STAGE1_GATEWAY_URL`), as a client would,
except the OHLCV and indicator rows: like the desktop today, they are written straight to QuestDB
(ILP over HTTP into WAL tables with DEDUP, so a re-run upserts the same rows) and then registered
with `POST /api/datasets?record_questdb=true`, which reads the counts and bounds back.

Run: `make seed` (or `python -m stage1_local.seed [--gateway URL]`). The token is `STAGE1_TOKEN`
if set, else the local bootstrap token of `make up` (stage1_local.bootstrap).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import uuid
from dataclasses import dataclass

import httpx

from stage1.core.ilp import encode_row
from stage1.core.questdb import get_questdb
from stage1.core.settings import get_settings
from stage1.timeseries.kinds import Kind, ensure_table
from stage1.timeseries.wal import wait_applied

NAMESPACE = uuid.UUID("5eed0000-0000-4000-8000-000000000003")


@dataclass(frozen=True)
class SeedDataset:
    slug: str
    symbol: str
    granularity: str
    step: int  # seconds per bar
    bars: int
    start: int
    price: float


DATASETS = (
    SeedDataset("seed_btc_1h", "BTC", "1h", 3600, 2000, 1_704_067_200, 42_000.0),
    SeedDataset("seed_eth_4h", "ETH", "4h", 14_400, 1200, 1_704_067_200, 2_300.0),
)
FOLDS = 4
THRESHOLDS = ("threshold_0", "threshold_1")


def bars(ds: SeedDataset) -> list[dict]:
    rng = random.Random(ds.slug)
    price, out = ds.price, []
    for i in range(ds.bars):
        o = price
        c = o * math.exp(rng.gauss(0, 0.008))
        out.append({"timestamp": ds.start + i * ds.step, "open": o, "high": max(o, c) * (1 + rng.random() / 300),
                    "low": min(o, c) * (1 - rng.random() / 300), "close": c, "volume": round(rng.uniform(5, 900), 4)})
        price = c
    return out


def indicators(rows: list[dict]) -> list[dict]:
    """RSI(14), EMA(20) and a +1/-1 momentum signal, from bar 20 on."""
    out, ema, gains, losses = [], rows[0]["close"], [], []
    for i in range(1, len(rows)):
        change = rows[i]["close"] - rows[i - 1]["close"]
        gains, losses = (gains + [max(change, 0)])[-14:], (losses + [max(-change, 0)])[-14:]
        ema = ema + (rows[i]["close"] - ema) * 2 / 21
        if i >= 20:
            loss = sum(losses) / 14
            rsi = 100.0 if loss == 0 else 100 - 100 / (1 + (sum(gains) / 14) / loss)
            out.append({"timestamp": rows[i]["timestamp"], "rsi_14": rsi, "ema_20": ema,
                        "signal": 1.0 if rows[i]["close"] > ema else -1.0})
    return out


def write(kind: Kind, table: str, rows: list[dict], granularity: str) -> None:
    ensure_table(kind, table, granularity)
    lines = "".join(encode_row(table, {k: v for k, v in r.items() if k != "timestamp"}, r["timestamp"] * 1_000_000)
                    for r in rows)
    get_questdb().write_lines(lines.encode(), timeout=60)
    wait_applied(table, timeout=60)


def run_payload(ds: SeedDataset, dataset_id: str, rows: list[dict]) -> dict:
    rng = random.Random(f"{ds.slug}-run")
    first_test = len(rows) // 5  # the first 20 % of bars only train the first fold
    per_fold = math.ceil((len(rows) - 1 - first_test) / FOLDS)
    preds, folds = [], []
    for k in range(FOLDS):
        lo, hi = first_test + k * per_fold, min(first_test + (k + 1) * per_fold, len(rows) - 1)
        if lo >= hi:
            continue
        folds.append({"fold_number": k, "train_start": rows[0]["timestamp"], "train_end": rows[lo - 1]["timestamp"],
                      "test_start": rows[lo]["timestamp"], "test_end": rows[hi - 1]["timestamp"],
                      "samples_train": lo, "samples_test": hi - lo,
                      "thresholds": {"long": 0.55, "short": 0.45, "threshold_0": 0.5, "threshold_1": 0.6},
                      "metrics": {"auc": round(0.5 + rng.random() / 10, 4),
                                  "hit_rate": round(0.48 + rng.random() / 10, 4)}})
        for i in range(lo, hi):
            target = 1.0 if rows[i + 1]["close"] > rows[i]["close"] else 0.0
            p = min(max(0.5 + (target - 0.5) * 0.2 + rng.gauss(0, 0.15), 0.0), 1.0)
            preds.append({"timestamp": rows[i]["timestamp"], "bar_index": i, "fold_number": k, "prediction": p,
                          "target": target, "threshold_0": float(p > 0.5), "threshold_1": float(p > 0.6)})
    return {
        "run_id": str(uuid.uuid5(NAMESPACE, f"{ds.slug}/run")), "dataset_id": dataset_id,
        "prediction_measurement": f"{ds.slug}_wf_20240301000000", "target_column": "close_up_next",
        "feature_columns": ["rsi_14", "ema_20", "signal"], "threshold_columns": list(THRESHOLDS),
        "walk_config": {"train_fraction": 0.2, "folds": FOLDS, "expanding": True},
        "hyperparameters": {"max_depth": 5, "eta": 0.05, "n_estimators": 400, "subsample": 0.8,
                            "objective": "binary:logistic"},
        "summary_metrics": {"auc": 0.55, "folds": FOLDS}, "started_at": "2024-03-01T00:00:00Z",
        "completed_at": "2024-03-01T00:04:00Z", "folds": folds, "predictions": preds,
    }


def trades(ds: SeedDataset, run: dict, rows: list[dict]) -> list[dict]:
    """Enter on a threshold_1 signal (long) or a low prediction (short), exit 6 bars later."""
    close = {r["timestamp"]: r["close"] for r in rows}
    out, busy_until = [], 0
    for p in run["predictions"]:
        ts = p["timestamp"]
        if ts < busy_until or ts + 6 * ds.step not in close:
            continue
        side = "long" if p["threshold_1"] else ("short" if p["prediction"] < 0.4 else None)
        if side is None:
            continue
        entry, exit_ = close[ts], close[ts + 6 * ds.step]
        qty = round(1000 / entry, 6)
        pnl = (exit_ - entry) * qty * (1 if side == "long" else -1)
        out.append({"bar_timestamp": ts, "side": side, "entry_price": entry, "exit_price": exit_, "quantity": qty,
                    "pnl": pnl, "return_pct": pnl / 1000 * 100, "extra": {"bars_held": 6}})
        busy_until = ts + 6 * ds.step
    return out


def token(settings_auth: bool) -> str | None:
    if os.environ.get("STAGE1_TOKEN"):
        return os.environ["STAGE1_TOKEN"]
    if not settings_auth:
        return None
    from stage1_local.bootstrap import default_secrets_file, ensure_token

    return ensure_token(default_secrets_file())[0]


def check(response: httpx.Response, *ok: int) -> dict:
    if response.status_code not in ok:
        raise SystemExit(f"{response.request.method} {response.request.url.path}: HTTP {response.status_code} "
                         f"{response.text[:500]}")
    return response.json()


def seed(client: httpx.Client) -> list[str]:
    report = []
    for ds in DATASETS:
        rows = bars(ds)
        write(Kind.OHLCV, f"{ds.slug}_ohlcv", rows, ds.granularity)
        write(Kind.INDICATORS, f"{ds.slug}_ind", indicators(rows), ds.granularity)
        dataset = check(client.post("/api/datasets", params={"record_questdb": "true"}, json={
            "dataset_slug": ds.slug, "dataset_id": str(uuid.uuid5(NAMESPACE, ds.slug)), "symbol": ds.symbol,
            "granularity": ds.granularity, "source": "seed", "metadata": {"seed": True, "exchange": "synthetic"},
            "ohlcv_measurement": f"{ds.slug}_ohlcv", "indicator_measurement": f"{ds.slug}_ind",
        }), 200, 201)
        report.append(f"dataset    {ds.slug}: {dataset['ohlcv_rows']} bars, {dataset['indicator_rows']} indicator rows")

        run = run_payload(ds, dataset["dataset_id"], rows)
        existing = client.get(f"/api/runs/{run['run_id']}")
        if existing.status_code == 404:
            created = check(client.post("/api/runs", json=run, timeout=120), 201)
            report.append(f"run        {created['prediction_measurement']}: {created['prediction_rows']} predictions")
        else:
            check(existing, 200)
            report.append(f"run        {run['prediction_measurement']}: already there")

        simulation_id = str(uuid.uuid5(NAMESPACE, f"{ds.slug}/simulation"))
        existing = client.get(f"/api/simulations/{simulation_id}")
        if existing.status_code == 404:
            body = {"simulation_id": simulation_id, "run_id": run["run_id"],
                    "name": f"{ds.symbol} threshold_1 long/short",
                    "config": {"hold_bars": 6, "notional": 1000, "short_below": 0.4},
                    "summary_metrics": {}, "trades": trades(ds, run, rows)}
            created = check(client.post("/api/simulations", json=body), 201)
            report.append(f"simulation {simulation_id}: {created['trade_count']} trades, "
                          f"{len(created['buckets'])} buckets")
        else:
            check(existing, 200)
            report.append(f"simulation {simulation_id}: already there")
    return report


def main(argv: list[str] | None = None) -> int:
    settings = get_settings()
    parser = argparse.ArgumentParser(description="Load the seed datasets, runs and simulations (idempotent)")
    parser.add_argument("--gateway", default=settings.service.gateway_url,
                        help="gateway URL (default: STAGE1_GATEWAY_URL)")
    args = parser.parse_args(argv)
    headers = {"X-Stage1-Token": t} if (t := token(settings.auth.auth_enabled)) else {}
    with httpx.Client(base_url=args.gateway.rstrip("/"), headers=headers, timeout=60) as client:
        try:
            client.get("/api/health").raise_for_status()
        except httpx.HTTPError as exc:
            print(f"the gateway is not reachable at {args.gateway} ({exc}); run `make up` first", file=sys.stderr)
            return 1
        for line in seed(client):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
