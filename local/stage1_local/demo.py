"""`make demo`: the whole flow against the running stack, through the API only, saying each step.

1. create a dataset; 2. upload an OHLCV and an indicator frame (generated: a few thousand hourly
bars) through the presigned-upload path and follow each import job; 3. save a walk-forward run
with folds and predictions (following its job if the server answers with one); 4. load the run
and its predictions back and check them; 5. save a simulation and read its trade buckets.

Every step checks what the service answered; any failure ends the demo with exit code 1.
Settings: `--url`/`--token` or STAGE1_URL (or STAGE1_GATEWAY_URL) and STAGE1_TOKEN — `make demo`
reads them from the local stack's env file. `--cleanup` deletes what the demo created.

Run: `python -m stage1_local.demo [--bars 3000] [--cleanup]`.
"""

from __future__ import annotations

import argparse
import csv
import math
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stage1_client import ApiError, Client

HOUR = 3600
START = 1_704_067_200  # 2024-01-01T00:00:00Z
FOLDS = 3
THRESHOLDS = ("signal_055", "signal_060")


class DemoFailed(Exception):
    pass


def step(n: int, text: str) -> None:
    print(f"\n[{n}] {text}", flush=True)


def say(text: str) -> None:
    print(f"    {text}", flush=True)


def check(condition: bool, text: str) -> None:
    if not condition:
        raise DemoFailed(text)
    say(f"ok: {text}")


# ---------------------------------------------------------------- generated data
def make_bars(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    price, bars = 42_000.0, []
    for i in range(n):
        open_ = price
        close = max(1.0, open_ * math.exp(rng.gauss(0, 0.006)))
        high = max(open_, close) * (1 + abs(rng.gauss(0, 0.002)))
        low = min(open_, close) * (1 - abs(rng.gauss(0, 0.002)))
        bars.append({"timestamp": START + i * HOUR, "open": round(open_, 2), "high": round(high, 2),
                     "low": round(low, 2), "close": round(close, 2), "volume": round(rng.uniform(5, 500), 4)})
        price = close
    return bars


def make_indicators(bars: list[dict[str, Any]], warmup: int = 20) -> list[dict[str, Any]]:
    """SMA-20, a 14-bar RSI and the 14-bar mean range, from bar `warmup` on (as real indicator sets
    start later than their bars)."""
    out = []
    closes = [b["close"] for b in bars]
    for i in range(warmup, len(bars)):
        window = closes[i - 19: i + 1]
        changes = [closes[j] - closes[j - 1] for j in range(i - 13, i + 1)]
        gains = sum(c for c in changes if c > 0) / 14
        losses = -sum(c for c in changes if c < 0) / 14
        rsi = 100.0 if losses == 0 else 100 - 100 / (1 + gains / losses)
        atr = sum(bars[j]["high"] - bars[j]["low"] for j in range(i - 13, i + 1)) / 14
        out.append({"timestamp": bars[i]["timestamp"], "sma_20": round(sum(window) / 20, 4),
                    "rsi_14": round(rsi, 4), "atr_14": round(atr, 4)})
    return out


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def make_run(bars: list[dict[str, Any]], seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Folds with expanding train windows and a test window each, and a prediction per test bar."""
    rng = random.Random(seed)
    n = len(bars)
    test = n // (FOLDS + 2)
    folds, predictions = [], []
    for k in range(FOLDS):
        train_end = test * (k + 2)
        test_end = min(train_end + test, n - 1)
        hits = 0
        for i in range(train_end, test_end):
            target = 1.0 if bars[i + 1]["close"] > bars[i]["close"] else 0.0
            prediction = min(1.0, max(0.0, 0.5 + (0.08 if target else -0.08) + rng.gauss(0, 0.15)))
            hits += (prediction > 0.5) == (target == 1.0)
            predictions.append({"timestamp": bars[i]["timestamp"], "bar_index": i, "fold_number": k,
                                "prediction": round(prediction, 6), "target": target,
                                "signal_055": 1.0 if prediction > 0.55 else 0.0,
                                "signal_060": 1.0 if prediction > 0.60 else 0.0})
        folds.append({"fold_number": k, "train_start": bars[0]["timestamp"],
                      "train_end": bars[train_end - 1]["timestamp"],
                      "test_start": bars[train_end]["timestamp"], "test_end": bars[test_end - 1]["timestamp"],
                      "samples_train": train_end, "samples_test": test_end - train_end,
                      "thresholds": {"signal_055": 0.55, "signal_060": 0.60},
                      "metrics": {"accuracy": round(hits / (test_end - train_end), 4)}})
    return folds, predictions


def make_trades(bars: list[dict[str, Any]], predictions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One trade per bar where a signal fired: long above 0.55, short below 0.45, held one bar."""
    trades = []
    for p in predictions:
        side = "long" if p["prediction"] > 0.55 else "short" if p["prediction"] < 0.45 else None
        i = p["bar_index"]
        if side is None or i + 1 >= len(bars):
            continue
        entry, exit_ = bars[i]["close"], bars[i + 1]["close"]
        ret = (exit_ - entry) / entry * (1 if side == "long" else -1)
        trades.append({"bar_timestamp": p["timestamp"], "side": side, "entry_price": entry, "exit_price": exit_,
                       "quantity": 0.1, "pnl": round(ret * entry * 0.1, 4), "return_pct": round(ret * 100, 4)})
    return trades


# ---------------------------------------------------------------- the demo
def job_printer() -> Any:
    """An on_update callback that says each new state of a job once."""
    seen: list[str] = []
    started = time.monotonic()

    def on_update(job: Any) -> None:
        line = f"{job.status} {job.progress:,}" + (f"/{job.total:,}" if job.total else "") + " rows"
        if not seen or seen[-1] != line:
            seen.append(line)
            say(f"job {job.job_id[:8]}: {line}  (+{time.monotonic() - started:.1f} s)")

    return on_update


def follow(client: Client, upload: Any, label: str, timeout: float) -> Any:
    job = client.uploads.wait(upload, on_update=job_printer(), timeout=timeout)
    if job.status != "COMPLETED":
        raise DemoFailed(f"{label} import job {job.job_id} ended {job.status}: {job.error}")
    return job


def run_demo(client: Client, *, bars_count: int, cleanup: bool, timeout: float) -> None:
    suffix = uuid.uuid4().hex[:8]
    slug = f"demo_{suffix}"
    seed = int(suffix, 16)
    t0 = time.monotonic()
    print(f"Stage1 demo against {client.url} (dataset {slug})")
    try:
        with tempfile.TemporaryDirectory(prefix="stage1-demo-") as tmp:
            step(1, f"Create the dataset {slug} (POST /api/datasets)")
            ds = client.datasets.upsert({"dataset_slug": slug, "symbol": "BTC", "granularity": "1h",
                                         "source": "demo", "metadata": {"generated_by": "make demo"}})
            say(f"dataset_id {ds.dataset_id}: tables {ds.ohlcv_measurement} and {ds.indicator_measurement}")
            check(ds.dataset_slug == slug, "the dataset came back with its slug")

            step(2, f"Upload {bars_count:,} hourly OHLCV bars and their indicators through presigned URLs")
            bars = make_bars(bars_count, seed)
            indicators = make_indicators(bars)
            for kind, rows, name in (("ohlcv", bars, "ohlcv.csv"), ("indicators", indicators, "indicators.csv")):
                path = write_csv(Path(tmp) / name, rows)
                say(f"{name}: {len(rows):,} rows, {path.stat().st_size:,} bytes → POST /api/datasets/{slug}/uploads "
                    f"for a presigned URL, then straight to the object store")
                upload = client.uploads.upload(path, kind=kind, dataset=slug)
                how = f"multipart in {upload.parts} parts" if upload.multipart else "one presigned POST"
                say(f"uploaded ({how}); import job {upload.job_id} — following it "
                    f"({'events' if client.jobs.events_supported is not False else 'polling'})")
                job = follow(client, upload, kind, timeout)
                check(job.progress == len(rows), f"{kind} import COMPLETED with {job.progress:,} rows")
            ds = client.datasets.get(slug)
            state = ds.questdb_state
            say(f"dataset now: ohlcv_rows={ds.ohlcv_rows:,} indicator_rows={ds.indicator_rows:,}; "
                f"QuestDB: {state.ohlcv.row_count if state else '?'} / {state.indicator.row_count if state else '?'}")
            check(state is not None and state.ohlcv.row_count == len(bars)
                  and state.indicator.row_count == len(indicators),
                  "QuestDB holds exactly the uploaded rows (no duplicates)")

            step(3, f"Save a walk-forward run: {FOLDS} folds, predictions uploaded as a file, then poll its job")
            folds, predictions = make_run(bars, seed)
            run_body: dict[str, Any] = {
                "dataset_slug": slug, "target_column": "next_bar_up", "feature_columns": ["sma_20", "rsi_14", "atr_14"],
                "threshold_columns": list(THRESHOLDS), "walk_config": {"scheme": "expanding", "folds": FOLDS},
                "hyperparameters": {"max_depth": 4, "eta": 0.1, "n_estimators": 200},
                "summary_metrics": {"accuracy": round(sum(f["metrics"]["accuracy"] for f in folds) / FOLDS, 4)},
                "folds": folds}
            path = write_csv(Path(tmp) / "predictions.csv", predictions)
            measurement = f"{slug}_wf_{datetime.now(UTC):%Y%m%d%H%M%S}"  # DESIGN.md's naming
            upload = client.uploads.upload(path, kind="predictions", measurement=measurement)
            say(f"predictions.csv: {len(predictions):,} rows uploaded to the object store for {measurement}; "
                f"import job {upload.job_id}")
            try:
                created = client.runs.create({**run_body, "upload_id": upload.upload_id})
            except ApiError as exc:
                if exc.status != 400 or (exc.details or {}).get("field") != "upload_id":
                    raise
                say("this server takes run predictions inline only: sending them in the request instead")
                created = client.runs.create({**run_body, "prediction_measurement": measurement,
                                              "predictions": predictions})
            say(f"POST /api/runs → run {created.run_id}, status {created.status}"
                + (f", job {created.job_id} (poll {created.poll_url})" if created.job_id else
                   f", {created.questdb_rows_written:,} rows written in the request"))
            run = client.runs.wait(created, timeout=timeout, on_update=job_printer())
            run_id = run.run_id
            check(run.status == "COMPLETED", f"run {run_id} is COMPLETED")

            step(4, "Load the run and its predictions back (GET /api/runs/{id}, /predictions)")
            run = client.runs.get(run_id)
            say(f"run {run.run_id}: status {run.status}, {len(run.folds)} folds, {run.prediction_rows:,} predictions "
                f"in {run.prediction_measurement}, thresholds {run.threshold_columns}")
            check(len(run.folds) == FOLDS and run.prediction_rows == len(predictions),
                  f"{FOLDS} folds and {len(predictions):,} predictions stored")
            page = client.runs.predictions(run_id, fold=0, limit=5)
            say(f"first predictions of fold 0 (JSON page, columns {page.columns}):")
            for row in page.predictions[:3]:
                say(f"  {row}")
            expected0 = [p for p in predictions if p["fold_number"] == 0]
            check(page.total == len(expected0) and page.predictions[0]["prediction"] == expected0[0]["prediction"],
                  "fold 0 reads back with the values sent")
            dest = client.runs.download_predictions(run_id, Path(tmp) / "predictions.csv")
            with open(dest, newline="") as f:
                lines = sum(1 for _ in f) - 1
            say(f"downloaded the predictions CSV: {dest.stat().st_size:,} bytes, {lines:,} rows")
            check(lines == len(predictions), "the CSV download has every prediction")

            step(5, "Save a simulation of the run's signals and read its trade buckets (POST /api/simulations)")
            trades = make_trades(bars, predictions)
            sim = client.simulations.create({"run_id": str(run_id), "name": f"demo one-bar hold {suffix}",
                                             "config": {"entry": "signal_055", "hold_bars": 1},
                                             "summary_metrics": {"trades": len(trades)}, "trades": trades})
            sim = client.simulations.get(sim.simulation_id)
            say(f"simulation {sim.simulation_id}: {sim.trade_count:,} trades")
            for b in sim.buckets:
                if b.bucket_type in ("all", "side"):
                    say(f"  {b.bucket_type:>4} {b.bucket_key:<6} trades={b.trade_count:>5} win_rate={b.win_rate:6.1%} "
                        f"total_pnl={b.total_pnl:12,.2f}")
            total = next((b for b in sim.buckets if b.bucket_type == "all"), None)
            check(total is not None and total.trade_count == len(trades)
                  and abs(total.total_pnl - sum(t["pnl"] for t in trades)) < 1e-6 * max(1, len(trades)),
                  "the 'all' bucket counts every trade and sums their pnl")
    finally:
        if cleanup:
            try:
                client.datasets.delete(slug, cascade=True, drop_questdb=True)
                print(f"\ncleaned up: dataset {slug} with its run, simulation and tables deleted")
            except ApiError as exc:
                print(f"\ncleanup of {slug} failed: {exc}", file=sys.stderr)
    print(f"\nDemo passed in {time.monotonic() - t0:.1f} s.")
    if not cleanup:
        print(f"Explore it: stage1 datasets show {slug} · stage1 runs list --dataset {slug} · "
              f"stage1 simulations list --dataset {slug}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Stage1 end-to-end demo")
    parser.add_argument("--url")
    parser.add_argument("--token")
    parser.add_argument("--bars", type=int, default=3000, help="hourly bars to generate (default 3000)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for each job")
    parser.add_argument("--cleanup", action="store_true", help="delete the demo's dataset at the end")
    args = parser.parse_args(argv)
    if args.bars < 200:
        parser.error("--bars must be at least 200")
    try:
        with Client(args.url, args.token) as client:
            run_demo(client, bars_count=args.bars, cleanup=args.cleanup, timeout=args.timeout)
    except ApiError as exc:
        print(f"\nDEMO FAILED: {exc.one_line()}", file=sys.stderr)
        return 1
    except DemoFailed as exc:
        print(f"\nDEMO FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
