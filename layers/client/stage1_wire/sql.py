"""SQL query and export requests and the query answer (`/api/questdb/*`)."""

from __future__ import annotations

from typing import Any, Literal

from stage1_wire.base import Model


class QueryIn(Model):
    """POST /api/questdb/query. `limit` may also be given as a query parameter (the body wins)."""

    sql: str
    limit: int | None = None


class QueryColumn(Model):
    name: str
    type: str


class QueryOut(Model):
    """`rows` are arrays in the order of `columns`; `count` is len(rows); `truncated` is true when the
    query had more rows than `limit` (or than fit in one response)."""

    columns: list[QueryColumn]
    rows: list[list[Any]]
    count: int
    truncated: bool
    limit: int


class ExportIn(Model):
    """POST /api/questdb/export."""

    sql: str
    format: Literal["csv", "parquet"] = "csv"
    filename: str | None = None
