"""The Postgres pool: created on first use, reused for the life of the process (a warm Lambda).

`prepare_threshold=None` because RDS Proxy / PgBouncer in transaction mode cannot keep
server-side prepared statements across transactions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row
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
