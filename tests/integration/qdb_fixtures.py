"""Test tables in the real QuestDB for the questdb endpoint tests (created and dropped per test module,
with unique names: the stack is shared)."""

from __future__ import annotations

import contextlib
import time

import httpx

from stage1.core.questdb import get_questdb, quote


def exec_sql(sql: str) -> dict:
    """Run SQL as the admin over HTTP /exec (test setup and verification only)."""
    result = get_questdb().exec(sql)
    return {"columns": [c.name for c in result.columns], "rows": result.dataset}


def wait_rows(name: str, expected: int, timeout: float = 30) -> None:
    """WAL tables apply rows asynchronously: wait until all are visible."""
    deadline = time.monotonic() + timeout
    count = -1
    while time.monotonic() < deadline:
        count = exec_sql(f"select count() from {quote(name)}")["rows"][0][0]
        pending = exec_sql(f"select wal_pending_row_count from tables() where table_name = '{name}'")["rows"]
        if count == expected and (not pending or not pending[0][0]):
            return
        time.sleep(0.2)
    raise AssertionError(f"{name}: {count} rows visible, expected {expected}")


def create_predictions(name: str, rows: int, *, start_us: int = 1_704_067_200_000_000, step_us: int = 3_600_000_000,
                       partition: str = "DAY") -> None:
    """A WAL predictions table (DEDUP on timestamp, fold_number) filled server-side."""
    exec_sql(
        f"create table {quote(name)} (timestamp TIMESTAMP, bar_index LONG, fold_number INT, prediction DOUBLE, "
        f"target DOUBLE, side SYMBOL) timestamp(timestamp) partition by {partition} WAL "
        f"DEDUP UPSERT KEYS(timestamp, fold_number)"
    )
    if rows:
        exec_sql(
            f"insert into {quote(name)} select timestamp_sequence({start_us}, {step_us}), x - 1, "
            f"cast((x - 1) % 3 as int), (x % 1000) / 1000.0, cast(x % 2 as double), "
            f"rnd_symbol('long', 'short') from long_sequence({rows})"
        )
        wait_rows(name, rows)


def drop(*names: str) -> None:
    for name in names:
        with contextlib.suppress(Exception):  # best-effort cleanup
            exec_sql(f"drop table if exists {quote(name)}")


def exp_csv(sql: str) -> bytes:
    """QuestDB's own /exp answer, to compare ours with."""
    url = get_questdb().base_url
    response = httpx.get(f"{url}/exp", params={"query": sql}, timeout=60)
    response.raise_for_status()
    return response.content
