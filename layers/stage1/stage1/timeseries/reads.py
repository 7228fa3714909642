"""Reads of QuestDB tables for the API: live table state, paged JSON rows and streamed CSV.

Everything that reaches QuestDB SQL here is either an identifier that passed `ident()` (or, for
column names QuestDB itself reported, the equally strict `_COLUMN_RE`), or a value rendered by
`literal()` from an already-parsed number. Timestamps go out as integers in the unit asked for
(`s` by default: the unix seconds the desktop's importer reads), under the column name `timestamp`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from stage1.core.errors import BadRequest, NotFound
from stage1.core.questdb import get_questdb, ident, literal, quote
from stage1.core.settings import get_settings
from stage1.timeseries.timestamps import micros_to_unix, to_micros
from stage1_wire.datasets import TableState

TimestampUnit = Literal["s", "ms", "us"]
# Names QuestDB reports for existing columns may be upper case; anything else is left out.
_COLUMN_RE = re.compile(r"^[A-Za-z0-9_]{1,127}$")
# Per-unit divisors for TIMESTAMP (µs) and TIMESTAMP_NS (ns) columns.
_DIVISORS = {"TIMESTAMP": {"s": 1_000_000, "ms": 1_000, "us": 1},
             "TIMESTAMP_NS": {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000}}
STATE_TIMEOUT = 3.0
MAX_UNIX = 253_402_300_799  # 9999-12-31T23:59:59Z, the largest `from`/`to` accepted
_STATE_SQL = (
    "select table_name, designatedTimestamp, partitionBy, walEnabled, dedup, table_suspended, table_row_count, "
    "table_min_timestamp, table_max_timestamp, wal_pending_row_count from tables()"
)


def _unix(value: Any) -> int | None:
    return None if value in (None, "") else micros_to_unix(to_micros(value))


def table_states(names: list[str], *, timeout: float = STATE_TIMEOUT, tolerant: bool = True) -> dict[str, TableState]:
    """The state of each named table, from one `tables()` query. With `tolerant`, a QuestDB that
    is down gives states with `exists: null` and the error instead of raising."""
    wanted = sorted({ident(n) for n in names})
    if not wanted:
        return {}
    in_list = ", ".join(f"'{n}'" for n in wanted)
    sql = _STATE_SQL + f" where lower(table_name) in ({in_list})"
    try:
        rows = get_questdb().exec(sql, timeout=timeout).rows()
    except Exception as exc:
        if not tolerant:
            raise
        from stage1.core.errors import to_stage1_error

        message = to_stage1_error(exc).message
        return {n: TableState(name=n, exists=None, error=message) for n in wanted}
    found = {str(r["table_name"]).lower(): r for r in rows}
    out: dict[str, TableState] = {}
    for n in wanted:
        r = found.get(n)
        if r is None:
            out[n] = TableState(name=n, exists=False)
            continue
        r = with_table_stats(r, timeout)
        out[n] = TableState(
            name=n, exists=True, row_count=r["table_row_count"],
            first_ts=_unix(r["table_min_timestamp"]) if r["table_row_count"] else None,
            last_ts=_unix(r["table_max_timestamp"]) if r["table_row_count"] else None,
            designated_timestamp=r["designatedTimestamp"] or None, partition_by=r["partitionBy"],
            wal_enabled=r["walEnabled"], dedup=r["dedup"], suspended=r["table_suspended"],
            wal_pending_rows=r["wal_pending_row_count"],
        )
    return out


def with_table_stats(row: dict[str, Any], timeout: float = STATE_TIMEOUT) -> dict[str, Any]:
    """A `tables()` row, its row count and timestamp bounds read from the table itself when
    `tables()` has none. QuestDB keeps them per table token: a table just renamed (an import's
    staging table become its target, `imports.core.copy_into`) or a WAL table with no transaction
    applied yet shows no count or no bounds until its next write, and a non-WAL table never has
    bounds. count() and the designated timestamp's min/max come from partition metadata: cheap at any
    size. The one place for this: table states (`table_states`) and measurements both use it."""
    count, ts_column = row.get("table_row_count"), row.get("designatedTimestamp")
    if count is not None and not (count and ts_column and (row.get("table_min_timestamp") is None
                                                          or row.get("table_max_timestamp") is None)):
        return row
    bounds = f", min({quote(ts_column, 'column')}) lo, max({quote(ts_column, 'column')}) hi" if ts_column else ""
    try:
        got = get_questdb().exec(f"select count() n{bounds} from {quote(row['table_name'])}",  # noqa: S608
                                 timeout=timeout).rows()
    except Exception:  # the row stays as tables() gave it: unknown, never an error of the read
        return row
    counted = got[0] if got else {}
    return {**row, "table_row_count": counted.get("n"), "table_min_timestamp": counted.get("lo"),
            "table_max_timestamp": counted.get("hi")}


@dataclass(frozen=True)
class TableColumn:
    name: str
    type: str
    designated: bool


def table_columns(table: str, *, timeout: float = STATE_TIMEOUT) -> list[TableColumn]:
    """The table's columns in table order, or 404 when it does not exist."""
    sql = f"select \"column\", type, designated from table_columns('{ident(table)}')"  # noqa: S608
    from stage1.core.questdb import QuestDBError

    try:
        rows = get_questdb().exec(sql, timeout=timeout).rows()
    except QuestDBError as exc:
        if "does not exist" in exc.questdb_message or "table not found" in exc.questdb_message.lower():
            raise NotFound(f"measurement {table} does not exist in questdb", {"measurement": table}) from None
        raise
    return [TableColumn(str(r["column"]), str(r["type"]), bool(r["designated"])) for r in rows]


def _q(name: str) -> str:
    if not _COLUMN_RE.fullmatch(name):
        raise BadRequest("unsupported column name", {"column": name[:80]})
    return f'"{name}"'


@dataclass
class RowQuery:
    """One filtered, ordered read of a table, rendered as SQL for `/exec` (paged) or `/exp` (CSV).

    `columns` are the output columns after `timestamp`, in order (names as the table has them);
    `missing` are requested columns the table does not have, returned as nulls."""

    table: str
    ts_column: str
    ts_type: str
    columns: list[str]
    from_s: int | None = None
    to_s: int | None = None
    filters: dict[str, int] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    unit: TimestampUnit = "s"
    missing: set[str] = field(default_factory=set)

    def _where(self) -> str:
        parts = []
        ts = _q(self.ts_column)
        if self.from_s is not None:
            parts.append(f"{ts} >= {literal(datetime.fromtimestamp(self.from_s, UTC))}")
        if self.to_s is not None and self.to_s < MAX_UNIX:  # inclusive: everything before the next second
            parts.append(f"{ts} < {literal(datetime.fromtimestamp(self.to_s + 1, UTC))}")
        parts += [f"{_q(col)} = {literal(int(value))}" for col, value in self.filters.items()]
        return f" where {' and '.join(parts)}" if parts else ""

    def _ts_expr(self) -> str:
        divisor = _DIVISORS.get(self.ts_type.upper(), _DIVISORS["TIMESTAMP"])[self.unit]
        expr = f"cast({_q(self.ts_column)} as long)"
        return f"{expr} / {divisor}" if divisor != 1 else expr

    def select_sql(self, limit: int | None = None, offset: int = 0) -> str:
        order = ", ".join(_q(c) for c in [self.ts_column, *self.order])
        page = f" limit {literal(int(offset))}, {literal(int(offset + limit))}" if limit is not None else ""
        if limit is None and offset:
            page = f" limit {literal(int(offset))}, {literal(2**62)}"
        outputs = [f'{self._ts_expr()} as "timestamp"']
        outputs += [f"null as {_q(c)}" if c in self.missing else _q(c) for c in self.columns]
        inner = f"select * from {quote(self.table)}{self._where()} order by {order}{page}"  # noqa: S608
        return f"select {', '.join(outputs)} from ({inner})"  # noqa: S608

    def count_sql(self) -> str:
        return f"select count() as n from {quote(self.table)}{self._where()}"  # noqa: S608

    @property
    def output_columns(self) -> list[str]:
        return ["timestamp", *self.columns]


def read_page(query: RowQuery, limit: int, offset: int, *, timeout: float | None = None,
              count_first: bool = True) -> tuple[list[dict[str, Any]], int]:
    """One page of rows (as dicts in output-column order) and the total matching the filters.

    Bounded by bytes too (cells are, by `page_limit`): wide text cells could otherwise make a
    10,000-row page of any size. QuestDB's answer is read up to `page_max_bytes`; a page that does
    not fit is asked again with a quarter of the rows (the client pages on with `next_offset`), down
    to one row, beyond which it is a 400 pointing at the CSV read."""
    max_bytes = get_settings().queries.page_max_bytes
    qdb = get_questdb()

    def count() -> int:
        total_rows = qdb.exec(query.count_sql(), timeout=timeout).rows()
        return int(total_rows[0]["n"]) if total_rows else 0

    total = count() if count_first else None
    if total is not None and offset >= total:
        return [], total
    # Without the count first (an aggregation costs a pass per query), one row more is asked: a page
    # that ends the result gives the total itself, and only a longer result is counted.
    extra = 0 if count_first else 1
    rows = limit
    while True:
        result = qdb.exec_bounded(query.select_sql(rows + extra, offset), max_bytes=max_bytes, timeout=timeout)
        if result is not None:
            break
        if rows == 1:
            raise BadRequest(f"one row of {query.table} is larger than {max_bytes} bytes as JSON; read it "
                             f"as CSV (format=csv)", {"limit_bytes": max_bytes, "offset": offset})
        rows = max(1, rows // 4)
    dataset = result.dataset
    if total is None:
        total = offset + len(dataset) if len(dataset) <= rows and (dataset or not offset) else count()
        dataset = dataset[:rows]
    names = query.output_columns
    return [dict(zip(names, row, strict=False)) for row in dataset], total


def open_csv(query: RowQuery, limit: int | None = None, offset: int = 0) -> Iterator[bytes]:
    """Start a `/exp` CSV export and return its chunks, formula-like text cells neutralised
    (`stage1.core.csvtext.neutralise_csv`: a symbol or name such as `=HYPERLINK(…)` is not run by a
    spreadsheet). The request is made here, so QuestDB's errors surface before a response starts;
    the returned generator closes it when done."""
    from stage1.core.csvtext import neutralise_csv

    stack = ExitStack()
    chunks = stack.enter_context(get_questdb().export(query.select_sql(limit, offset)))

    def stream() -> Iterator[bytes]:
        with stack:
            yield from chunks

    return neutralise_csv(stream(), unquoted_text=False)


def resolve_columns(available: list[TableColumn], requested: list[str] | None,
                    exclude: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:
    """Output columns: the requested ones (validated, matched case-insensitively) or every
    non-designated column of the table. Returns (columns, unknown requested names)."""
    by_lower = {c.name.lower(): c.name for c in available if not c.designated and _COLUMN_RE.fullmatch(c.name)}
    skip = {"timestamp", *exclude}
    if not requested:
        return [name for low, name in by_lower.items() if low not in skip], []
    out, unknown = [], []
    for raw in requested:
        for part in raw.split(","):
            name = part.strip()
            if not name:
                continue
            ident(name, "column")
            if name in by_lower and name not in skip:
                if by_lower[name] not in out:
                    out.append(by_lower[name])
            elif name not in skip:
                unknown.append(name)
    return out, unknown


def designated(available: list[TableColumn], table: str) -> TableColumn:
    for col in available:
        if col.designated:
            return col
    for col in available:  # a table without a designated timestamp: fall back to a `timestamp` column
        if col.name.lower() == "timestamp" and col.type.upper().startswith("TIMESTAMP"):
            return col
    raise BadRequest(f"measurement {table} has no designated timestamp", {"measurement": table})
