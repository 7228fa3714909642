"""The Postgres pool: created on first use, reused for the life of the process (a warm Lambda).

`prepare_threshold=None` because RDS Proxy / PgBouncer in transaction mode cannot keep
server-side prepared statements across transactions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from psycopg import Connection, sql
from psycopg.rows import dict_row
from psycopg.sql import Composable
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from stage1.core.lazy import lazy
from stage1.core.settings import get_settings


@lazy
def get_pool() -> ConnectionPool:
    settings = get_settings()
    pool = ConnectionPool(
        settings.postgres.pg_dsn,
        min_size=1,
        max_size=settings.postgres.pg_pool_max,
        kwargs={"prepare_threshold": None, "row_factory": dict_row, "connect_timeout": 3},
        check=ConnectionPool.check_connection,
        # Fail fast (503) instead of queueing a request behind a dead database.
        timeout=5,
        open=False,
        name="stage1",
    )
    pool.open(wait=False)
    return pool


@contextmanager
def connection() -> Iterator[Connection[dict[str, Any]]]:
    """A pooled connection; its transaction commits on a clean exit and rolls back on an error."""
    with get_pool().connection() as conn:
        yield conn


def close_pool() -> None:
    if (pool := get_pool.reset()) is not None:
        pool.close()


def jsonb(value: Any) -> Jsonb:
    """A value for a `jsonb` column, as a bind parameter."""
    return Jsonb(value)


def fetch_within(conn: Connection[Any], query: Composable, params: dict[str, Any], max_bytes: int,
                 ) -> tuple[list[dict[str, Any]], bool]:
    """The rows of `query` up to `max_bytes` of their JSON text, and whether rows were left out.

    For pages whose rows hold the client's own JSON (a trade's `extra`, a simulation's `config`):
    rows alone do not bound such a page. Postgres sizes each row (`row_to_json`, in the order the
    query gives), and rows come through a server-side cursor a few at a time, so neither the answer
    nor the page is ever larger than the cap plus one row. The caller pages on after the last row."""
    sized = sql.SQL("select q.*, octet_length(row_to_json(q)::text) as _row_bytes from ({}) q").format(query)
    rows: list[dict[str, Any]] = []
    used = 0
    with conn.transaction(), conn.cursor(name="stage1_page") as cur:
        cur.itersize = 50
        cur.execute(sized, params)
        for row in cur:
            used += row.pop("_row_bytes")
            if used > max_bytes and rows:
                return rows, True
            rows.append(row)
    return rows, False
