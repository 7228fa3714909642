"""Read-only SQL over PGWire as QuestDB's read-only user (POST /api/questdb/query).

Three layers, each enough on its own against plain writes:
1. `check_readonly` (one SELECT / WITH … SELECT, no statement verbs, no side-effect functions);
2. QuestDB's read-only user (`pg.readonly.user`): the server refuses INSERT/UPDATE/DDL/COPY/… with
   "Write permission denied", whatever the text looked like;
3. the extended query protocol (psycopg's `stream`, which never uses the simple protocol): one
   statement per round trip, so a `;`-chained second statement cannot run.

The user's statement runs wrapped as `select * from (<sql>) limit N+1`, so QuestDB stops after the
rows we return; a timer cancels it (PG cancel request) when the timeout elapses.

Memory is bounded by bytes, not rows: rows arrive one at a time (libpq single-row mode, so the
driver never buffers a chunk of unknown size), each is JSON-encoded at once and only its bytes are
kept; the read stops (`truncated: true`) before the encoded rows pass `query_max_bytes`, and a
single row over `query_max_row_bytes` is a 400. Peak memory ≈ the cap + one row, whatever the
statement (a 600 MB result used to be materialised before the cap was applied).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import msgspec

from stage1.core.errors import BadRequest, HttpError, ServiceUnavailable
from stage1.core.lazy import lazy
from stage1.core.logging import get_logger
from stage1.core.questdb import QuestDBError
from stage1.core.settings import get_settings
from stage1.sql.readonly import check_readonly
from stage1.sql.schemas import QueryColumn, QueryOut

log = get_logger("sql")

_WRAP_HEAD = "select * from (\n"

# PGWire type names (psycopg's registry) → QuestDB's names. SYMBOL, STRING and VARCHAR all travel
# as varchar; IPv4, GEOHASH, LONG256 and INTERVAL as text (docs/questdb.md).
PG_TO_QUESTDB = {
    "bool": "BOOLEAN", "int2": "SHORT", "int4": "INT", "int8": "LONG", "float4": "FLOAT", "float8": "DOUBLE",
    "bpchar": "CHAR", "char": "CHAR", "varchar": "VARCHAR", "text": "STRING", "timestamp": "TIMESTAMP",
    "timestamptz": "TIMESTAMP", "date": "DATE", "uuid": "UUID", "bytea": "BINARY", "numeric": "DECIMAL",
    "float8[]": "DOUBLE[]", "_float8": "DOUBLE[]", "interval": "INTERVAL",
}


@lazy
def get_pool() -> Any:
    """A small pool of read-only PGWire connections, opened on first use."""
    from psycopg_pool import ConnectionPool

    settings = get_settings()
    if not settings.questdb.qdb_pg_readonly_dsn:
        raise ServiceUnavailable("questdb", "no read-only PGWire user configured (STAGE1_QDB_PG_READONLY_DSN)")
    pool = ConnectionPool(
        settings.questdb.qdb_pg_readonly_dsn,
        min_size=0,
        max_size=4,
        kwargs={"autocommit": True, "prepare_threshold": None, "connect_timeout": 3},
        check=_check,
        timeout=5,
        open=False,
        name="questdb-readonly",
    )
    pool.open(wait=False)
    return pool


def _check(conn: Any) -> None:
    """Is a pooled connection alive? Not psycopg's `check_connection`: its empty simple query gets
    no answer from QuestDB after an extended-protocol Parse."""
    list(conn.cursor().stream("select 1"))


def close_pool() -> None:
    if (pool := get_pool.reset()) is not None:
        pool.close()


@contextmanager
def _connection() -> Iterator[Any]:
    import psycopg
    import psycopg_pool

    try:
        with get_pool().connection() as conn:
            yield conn
    except (psycopg.OperationalError, psycopg.InterfaceError, psycopg_pool.PoolTimeout) as exc:
        # Not Postgres: the error mapping would otherwise name the wrong service.
        raise ServiceUnavailable("questdb", _first_line(exc)) from exc


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__


def _type_name(conn: Any, oid: int) -> str:
    info = conn.adapters.types.get(oid)
    name = info.name if info is not None else str(oid)
    return PG_TO_QUESTDB.get(name, name.upper())


def _json_value(value: Any) -> Any:
    """msgspec encodes the rest (UUID, Decimal as a string, bytes as base64, NaN as null)."""
    if isinstance(value, datetime):  # QuestDB timestamps are UTC without a zone on the wire
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


_ROW_ENCODER = msgspec.json.Encoder()


class _Rows:
    """Encoded rows with their byte count: what the response will hold, nothing more."""

    def __init__(self, max_bytes: int, max_row_bytes: int) -> None:
        self.max_bytes, self.max_row_bytes = max_bytes, max_row_bytes
        self.body = bytearray(b"[")
        self.count = 0

    def add(self, row: Any) -> bool:
        """Append one row; False (and nothing appended) when it would pass the response cap."""
        encoded = _ROW_ENCODER.encode([_json_value(v) for v in row])
        if len(encoded) > self.max_row_bytes:
            raise BadRequest(f"row {self.count + 1} is {len(encoded)} bytes as JSON, more than the "
                             f"{self.max_row_bytes} allowed per row; select fewer or shorter columns, or use "
                             f"POST /api/questdb/export", {"limit_bytes": self.max_row_bytes, "row": self.count + 1})
        if len(self.body) + len(encoded) + 2 > self.max_bytes:
            return False
        if self.count:
            self.body += b","
        self.body += encoded
        self.count += 1
        return True

    def raw(self) -> msgspec.Raw:
        return msgspec.Raw(bytes(self.body + b"]"))


def _columns(conn: Any, cur: Any) -> list[QueryColumn]:
    return [QueryColumn(d.name, _type_name(conn, d.type_code)) for d in (cur.description or [])]


def check_timeout(timeout: float | None, default: float, maximum: float) -> float:
    """A request's timeout: the default when absent; above the maximum it is a 400 naming it."""
    if timeout is None:
        return default
    if not timeout > 0:
        raise BadRequest("timeout must be a positive number of seconds", {"timeout_seconds": timeout})
    if timeout > maximum:
        raise BadRequest(f"timeout may be at most {maximum:g} s for this request",
                         {"timeout_seconds": timeout, "max_timeout_seconds": maximum})
    return float(timeout)


def run_query(sql: str, *, limit: int, timeout: float) -> QueryOut:
    """Run one read-only statement and return at most `limit` rows (plus whether there were more)."""
    import psycopg

    settings = get_settings()
    statement = check_readonly(sql).sql
    wrapped = f"{_WRAP_HEAD}{statement}\n) limit {int(limit) + 1}"
    rows = _Rows(settings.queries.query_max_bytes, settings.queries.query_max_row_bytes)
    truncated = False
    cancelled = threading.Event()
    with _connection() as conn:

        def cancel() -> None:
            cancelled.set()
            conn.cancel_safe()

        timer = threading.Timer(timeout, cancel)
        timer.daemon = True
        timer.start()
        try:
            cur = conn.cursor()
            stream = cur.stream(wrapped, size=1)  # single-row mode: the driver holds one row at a time
            columns: list[QueryColumn] | None = None
            try:
                for row in stream:
                    if columns is None:
                        columns = _columns(conn, cur)
                        # The column list shares the answer's budget (25,000 columns are ~1 MB).
                        rows.max_bytes -= len(_ROW_ENCODER.encode(columns))
                    if rows.count >= limit:
                        truncated = True
                        break
                    try:
                        fits = rows.add(row)
                    except BadRequest:  # a row over the per-row cap
                        conn.close()
                        raise
                    if not fits:
                        truncated = True
                        # Rows of unknown size may still be coming (up to `limit`): dropping the
                        # connection stops QuestDB at once, where psycopg would cancel and drain them.
                        conn.close()
                        break
                columns = columns or _columns(conn, cur)
            finally:
                stream.close()
        except psycopg.DatabaseError as exc:
            if cancelled.is_set():
                raise HttpError(504, "query timed out", {"timeout_seconds": timeout}) from exc
            if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
                raise
            raise _questdb_error(exc, statement) from exc
        finally:
            timer.cancel()
    return QueryOut(columns=columns, rows=rows.raw(), count=rows.count,  # type: ignore[arg-type]
                    truncated=truncated, limit=limit)


def preflight(sql: str) -> None:
    """Have QuestDB compile (not run) the statement as the read-only user: its refusal (unknown
    column, syntax, permission) becomes a 400 now instead of a failed job later."""
    from psycopg import pq

    statement = check_readonly(sql).sql
    with _connection() as conn:
        result = conn.pgconn.prepare(b"", statement.encode())
        if result.status != pq.ExecStatus.COMMAND_OK:
            message = (result.error_field(pq.DiagnosticField.MESSAGE_PRIMARY) or b"").decode(errors="replace")
            raw_position = (result.error_field(pq.DiagnosticField.STATEMENT_POSITION) or b"").decode()
            position = int(raw_position) - 1 if raw_position.isdigit() else None
            raise QuestDBError("questdb rejected the query", message or "invalid statement", position)


def _questdb_error(exc: Any, statement: str) -> QuestDBError:
    """QuestDB's own text, with the position mapped back into the user's statement."""
    diag = exc.diag
    message = diag.message_primary or _first_line(exc)
    position = None
    if diag.statement_position:
        try:
            position = max(0, int(diag.statement_position) - 1 - len(_WRAP_HEAD))
        except ValueError:
            position = None
        if position is not None and position > len(statement):
            position = None
    return QuestDBError("questdb rejected the query", message, position)


def query(sql: str, *, body_limit: int | None, limit: int | None, timeout: float | None) -> QueryOut:
    """`POST /api/questdb/query`: the row limit (the body's, else the query's, else the default;
    never above `query_max_rows`) and the timeout (default and maximum from settings), then the query."""
    settings = get_settings()
    rows = min(body_limit or limit or settings.queries.query_default_rows, settings.queries.query_max_rows)
    seconds = check_timeout(timeout, settings.queries.query_timeout, settings.queries.query_max_timeout)
    return run_query(sql, limit=max(1, rows), timeout=seconds)
