"""Helpers of the datasets/runs/simulations tests (issue 3): deterministic data, QuestDB tables the
way the desktop writes them, and direct checks of what Postgres/QuestDB hold (verification only;
everything under test goes through the gateway)."""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from stage1.core import db
from stage1.core.ilp import encode_row
from stage1.core.questdb import get_questdb, quote
from stage1.timeseries.kinds import Kind, ensure_table
from stage1.timeseries.wal import wait_applied

START = 1_704_067_200  # 2024-01-01T00:00:00Z
HOUR = 3600


def ohlcv_rows(n: int, start: int = START, step: int = HOUR, seed: int = 1) -> list[dict]:
    rng = random.Random(seed)
    price, rows = 42_000.0, []
    for i in range(n):
        o = price
        c = o * (1 + rng.uniform(-0.01, 0.01))
        h, low = max(o, c) * (1 + rng.random() / 200), min(o, c) * (1 - rng.random() / 200)
        rows.append({"timestamp": start + i * step, "open": o, "high": h, "low": low, "close": c,
                     "volume": round(rng.uniform(1, 500), 6)})
        price = c
    return rows


def indicator_rows(n: int, start: int, step: int = HOUR, seed: int = 2) -> list[dict]:
    rng = random.Random(seed)
    return [{"timestamp": start + i * step, "rsi_14": rng.uniform(0, 100), "ema_20": rng.uniform(40_000, 44_000),
             "signal": float(rng.randint(-1, 1))} for i in range(n)]


def write_table(kind: Kind, table: str, rows: list[dict], granularity: str = "1h") -> None:
    """Create the table as the service does (WAL + DEDUP) and write rows over ILP/HTTP, applied."""
    ensure_table(kind, table, granularity)
    lines = "".join(encode_row(table, {k: v for k, v in r.items() if k != "timestamp"}, r["timestamp"] * 10**6)
                    for r in rows)
    get_questdb().write_lines(lines.encode(), timeout=30)
    wait_applied(table, timeout=30)


def drop_tables(*names: str) -> None:
    for name in names:
        with contextlib.suppress(Exception):  # best-effort cleanup of a shared server
            get_questdb().exec(f"drop table if exists {quote(name)}", timeout=10)


def table_exists(name: str) -> bool:
    return get_questdb().table_exists(name)


def run_rows(run_id: str) -> int:
    with db.connection() as conn:
        return conn.execute("select count(*) as n from walkforward_runs where run_id = %s", (run_id,)).fetchone()["n"]


def runs_of_dataset(dataset_id: str) -> int:
    with db.connection() as conn:
        return conn.execute("select count(*) as n from walkforward_runs where dataset_id = %s",
                            (dataset_id,)).fetchone()["n"]


@contextmanager
def dataset(client: httpx.Client, slug: str, **fields) -> Iterator[dict]:
    """A dataset created through the API, deleted (cascade, with its QuestDB tables) afterwards."""
    r = client.post("/api/datasets", json={"dataset_slug": slug, "symbol": "BTC", "granularity": "1h", **fields})
    assert r.status_code == 201, r.text
    body = r.json()
    try:
        yield body
    finally:
        client.delete(f"/api/datasets/{body['dataset_id']}", params={"cascade": "true", "drop_questdb": "true"})
        drop_tables(body["ohlcv_measurement"], body["indicator_measurement"])


def predictions(n: int, folds: int, thresholds: list[str], seed: int = 3, start: int = START) -> list[dict]:
    """Walk-forward predictions: fold k covers a contiguous block of bars; some targets are null."""
    rng = random.Random(seed)
    per_fold = math.ceil(n / folds)
    rows = []
    for i in range(n):
        row = {"timestamp": start + i * HOUR, "bar_index": 1000 + i, "fold_number": i // per_fold,
               "prediction": rng.uniform(-1, 1), "target": None if i % 97 == 0 else float(rng.randint(0, 1))}
        for t in thresholds:
            row[t] = float(rng.random() > 0.5)
        rows.append(row)
    return rows


def assert_envelope(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.text[:500])
    body = response.json()
    assert set(body) == {"error", "details"}, body
    assert isinstance(body["error"], str) and body["error"]
    return body
