"""Seed many runs and simulations straight into Postgres (one COPY each), under a throwaway dataset
that only the caller uses, and remove them again. Used by test_run_search.py and
tests/benchmarks/bench_run_search.py: the API under test is the search, not POST /api/runs."""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from stage1.core import db

BASE = datetime(2025, 1, 1, tzinfo=UTC)
MODELS = ("xgb", "lgbm", "rf")


@dataclass
class Seeded:
    dataset_id: uuid.UUID
    slug: str
    runs: list[dict] = field(default_factory=list)
    simulations: list[dict] = field(default_factory=list)


def _run(i: int, rng: random.Random, dataset_id: uuid.UUID, slug: str) -> dict:
    metrics: dict = {"label": f"run_{i % 7}", "trades": rng.randint(0, 500)}
    if i % 97 == 0:
        metrics["sharpe"] = "n/a"  # not a number: must never break a numeric filter or sort
    elif i % 50 != 0:  # every 50th run has no sharpe at all
        metrics["sharpe"] = round(rng.uniform(-2, 3), 1)  # one decimal: many ties
    return {
        "run_id": uuid.uuid4(), "dataset_id": dataset_id, "prediction_measurement": f"{slug}_r{i}",
        "status": "FAILED" if i % 10 == 0 else "COMPLETED", "target_column": "up" if i % 2 else "down",
        "summary_metrics": metrics,
        "hyperparameters": {"max_depth": i % 12, "model": MODELS[i % 3], "lr": round(rng.uniform(0.01, 0.3), 3)},
        "walk_config": {"train_size": 100 * (1 + i % 4), "step": 24},
        "created_at": BASE + timedelta(seconds=i // 100),  # ties of 100
        "prediction_rows": i % 1000,
    }


def seed(n_runs: int, *, n_simulations: int = 0, fold_runs: int = 0, seed_value: int = 11) -> Seeded:
    """`n_runs` runs (and `n_simulations` simulations, `fold_runs` runs with 3 folds each) in a new
    dataset `h11search_<hex>`, inserted with COPY in one transaction."""
    rng = random.Random(seed_value)
    dataset_id, slug = uuid.uuid4(), f"h11search_{uuid.uuid4().hex[:10]}"
    seeded = Seeded(dataset_id, slug)
    seeded.runs = [_run(i, rng, dataset_id, slug) for i in range(n_runs)]
    for r in seeded.runs[:fold_runs]:
        r["folds"] = [{"acc": round(rng.uniform(0.3, 0.9), 2)} for _ in range(3)]
    for i in range(n_simulations):
        pnl = None if i % 40 == 0 else round(rng.uniform(-1000, 1000), 0)
        seeded.simulations.append({
            "simulation_id": uuid.uuid4(), "dataset_id": dataset_id, "name": f"sim_{i % 9}",
            "summary_metrics": {} if pnl is None else {"pnl": pnl, "win_rate": round(rng.random(), 2)},
            "config": {"fee_bps": i % 5, "side": "long" if i % 2 else "short"}, "trade_count": i % 300,
            "created_at": BASE + timedelta(seconds=i // 10),
        })
    with db.connection() as conn, conn.transaction(), conn.cursor() as cur:
        cur.execute("insert into stage1_datasets (dataset_id, dataset_slug, symbol, granularity, ohlcv_measurement, "
                    "indicator_measurement) values (%s, %s, 'TEST', '1h', %s, %s)",
                    (dataset_id, slug, f"{slug}_ohlcv", f"{slug}_ind"))
        with cur.copy("copy walkforward_runs (run_id, dataset_id, prediction_measurement, status, target_column, "
                      "summary_metrics, hyperparameters, walk_config, created_at, prediction_rows) from stdin") as cp:
            for r in seeded.runs:
                cp.write_row((r["run_id"], dataset_id, r["prediction_measurement"], r["status"], r["target_column"],
                              json.dumps(r["summary_metrics"]), json.dumps(r["hyperparameters"]),
                              json.dumps(r["walk_config"]), r["created_at"], r["prediction_rows"]))
        with cur.copy("copy walkforward_folds (run_id, fold_number, metrics) from stdin") as cp:
            for r in seeded.runs[:fold_runs]:
                for number, metrics in enumerate(r["folds"]):
                    cp.write_row((r["run_id"], number, json.dumps(metrics)))
        with cur.copy("copy simulation_runs (simulation_id, dataset_id, name, summary_metrics, config, trade_count, "
                      "created_at) from stdin") as cp:
            for s in seeded.simulations:
                cp.write_row((s["simulation_id"], dataset_id, s["name"], json.dumps(s["summary_metrics"]),
                              json.dumps(s["config"]), s["trade_count"], s["created_at"]))
        cur.execute("analyze walkforward_runs")
    return seeded


def drop(seeded: Seeded) -> None:
    with db.connection() as conn, conn.transaction():
        conn.execute("delete from simulation_runs where dataset_id = %s", (seeded.dataset_id,))
        conn.execute("delete from walkforward_runs where dataset_id = %s", (seeded.dataset_id,))
        conn.execute("delete from stage1_datasets where dataset_id = %s", (seeded.dataset_id,))
