"""Helpers shared by the datasets, runs and simulations areas: id parsing, edge types for slugs
and measurement names, timestamps in and out, JSON columns, CSV responses."""

from __future__ import annotations

import inspect
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Response
from litestar.params import QueryParameter
from litestar.response import Stream
from psycopg.types.json import Jsonb

from stage1.core.errors import BadRequest
from stage1.timeseries.timestamps import to_micros

# `(?!\n)`: Python's `$` also matches before a trailing newline, so without it "a\n" passed every
# schema and reached Postgres' check constraint (an unhandled 500). Valid in JSON Schema (ECMA) too.
NAME_PATTERN = r"^[a-z0-9_]{1,63}(?!\n)$"
_NAME_RE = re.compile(NAME_PATTERN)

Slug = Annotated[str, msgspec.Meta(pattern=NAME_PATTERN, max_length=63,
                                   description="1-63 characters from [a-z0-9_]")]
Measurement = Annotated[str, msgspec.Meta(pattern=NAME_PATTERN, max_length=63,
                                          description="QuestDB table name: 1-63 characters from [a-z0-9_]")]
ShortText = Annotated[str, msgspec.Meta(max_length=200)]
# Unix seconds for bar and window bounds (0 .. year 9999).
UnixSeconds = Annotated[int, msgspec.Meta(ge=0, le=253_402_300_799)]
# A client-side time: an ISO-8601 string (naive = UTC) or a unix time in s/ms/us/ns.
ClientTime = datetime | int
JsonObject = dict[str, Any]


def parse_uuid(value: str, field: str) -> uuid.UUID:
    """A path or query id that must be a UUID; anything else is a 400 naming the field."""
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        raise BadRequest(f"invalid {field}: not a UUID", {"field": field, "value": str(value)[:80]}) from None


def parse_ref(value: str, field: str = "dataset_id") -> tuple[str, uuid.UUID | str]:
    """A reference that may be a UUID or a slug: ("id", UUID) or ("slug", str), else 400."""
    try:
        return "id", uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        pass
    if isinstance(value, str) and _NAME_RE.fullmatch(value):
        return "slug", value
    raise BadRequest(f"invalid {field}: neither a UUID nor a slug ([a-z0-9_], at most 63 characters)",
                     {"field": field, "value": str(value)[:80]})


def utc(value: datetime | None) -> datetime | None:
    """A database timestamp as an aware UTC datetime (msgspec writes it as ISO-8601 with `Z`)."""
    if value is None:
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def client_time(value: datetime | int | None, field: str) -> datetime | None:
    """A timestamp from a request body as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return utc(value)
    try:
        return datetime.fromtimestamp(to_micros(value) / 1_000_000, UTC)
    except (BadRequest, ValueError, OverflowError, OSError):  # out of datetime's range (years 1-9999)
        raise BadRequest(f"invalid {field}", {"field": field, "value": value}) from None


def jsonb(value: Any) -> Jsonb:
    return Jsonb(value)


def csv_headers(filename: str) -> dict[str, str]:
    return {"content-disposition": f'attachment; filename="{filename}"', "cache-control": "no-store"}


# CSV injection (OWASP): a spreadsheet runs a cell that starts with = + - @ tab or CR as a formula,
# so such a text cell gets a leading single quote, unless it is a number (`-1.5`, `+3`, `-1.0E-5`).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUM = rb"[+-]?(?:\d{1,40}(?:\.\d{0,40})?|\.\d{1,40})(?:[eE][+-]?\d{1,4})?|[+-]?(?:Infinity|NaN)"
_NUMBER = re.compile(_NUM.decode())
# A cell start (after `,` or LF) whose text starts like a formula and is not a number; quoted or not.
_ANY_CELL = re.compile(rb'[,\n](?:"(?=[=+\-@\t\r])(?!(?:' + _NUM + rb')")|(?=[=+\-@\t])(?!(?:' + _NUM
                       + rb')(?:[,\r\n]|$)))')
_QUOTED_CELL = re.compile(rb'[,\n]"(?=[=+\-@\t\r])(?!(?:' + _NUM + rb')")')
# Cheap literal-prefixed pre-checks (~10x faster than the patterns above) for QuestDB's CSV.
_QUOTED_QUICK = (re.compile(rb',"[=+\-@\t\r]'), re.compile(rb'\n"[=+\-@\t\r]'))
_LOOKAHEAD = 256  # bytes kept back between chunks: more than the longest number above


def csv_cell(value: Any) -> Any:
    """A value for a CSV writer: text that a spreadsheet would run as a formula gets a `'` prefix."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def neutralise_csv(chunks: Iterator[bytes], *, unquoted_text: bool = True) -> Iterator[bytes]:
    """RFC 4180 CSV bytes with every formula-like text cell prefixed by `'` (see `csv_cell`), in
    the same chunks (less a small look-ahead carried to the next one). Quote parity is tracked across
    chunks, so a `,=` inside a quoted field is left alone. `unquoted_text=False` is for QuestDB's
    `/exp`, which quotes every string value (an unquoted cell is a number, boolean, null or CHAR),
    so only quoted cells are examined, behind a fast pre-check. Closing this closes `chunks`."""
    pattern = _ANY_CELL if unquoted_text else _QUOTED_CELL
    context, pending, odd = b"\n", b"", False  # a virtual line end before the first cell
    try:
        for chunk in chunks:
            data = context + pending + chunk
            cut = len(data) - _LOOKAHEAD
            if cut <= len(context):
                pending = data[len(context):]
                continue
            out, odd = _rewrite(data, len(context), cut, odd, pattern, quick=not unquoted_text)
            yield out
            context, pending = data[cut - 1:cut], data[cut:]
        data = context + pending
        if len(data) > len(context):
            out, odd = _rewrite(data, len(context), len(data), odd, pattern, quick=not unquoted_text)
            yield out
    finally:
        release_chunks(chunks)


def _rewrite(data: bytes, start: int, end: int, odd: bool, pattern: re.Pattern[bytes], *,
             quick: bool) -> tuple[bytes, bool]:
    """data[start:end] with the prefixes inserted, and the quote parity after it."""
    if quick and not any(q.search(data, start - 1, end + 1) for q in _QUOTED_QUICK):
        return data[start:end], odd ^ bool(data.count(b'"', start, end) & 1)
    parts, last, counted = [], start, start
    for found in pattern.finditer(data, start - 1):
        at = found.start() + 1  # the cell's first byte (a quote, or the text)
        if at >= end:
            break
        odd ^= bool(data.count(b'"', counted, at) & 1)
        counted = at
        if odd:  # inside a quoted field: not a cell start
            continue
        insert = at + 1 if data[at] == 0x22 else at
        parts += [data[last:insert], b"'"]
        last = insert
    odd ^= bool(data.count(b'"', counted, end) & 1)
    parts.append(data[last:end])
    return b"".join(parts), odd


def release_chunks(chunks: Iterator[bytes]) -> None:
    """Release CSV chunks: a generator that never ran has not entered its own `with` (which holds
    the open QuestDB or Postgres read), so it is advanced once before it is closed."""
    if inspect.isgenerator(chunks):
        if inspect.getgeneratorstate(chunks) == inspect.GEN_CREATED:
            next(chunks, None)
        chunks.close()


def csv_lines(header: list[str], rows: Iterator[list[Any]]) -> Iterator[bytes]:
    """CSV text (RFC 4180, `\\n` line ends, nulls empty, formula-like text neutralised) in chunks
    of about 64 KiB."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([csv_cell(h) for h in header])
    for row in rows:
        writer.writerow(["" if v is None else csv_cell(v) for v in row])
        if buf.tell() >= 1 << 16:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    if buf.tell():
        yield buf.getvalue().encode()


class CsvBody:
    """A CSV download a service hands to its handler: a file name and the chunks to stream."""

    __slots__ = ("chunks", "filename")

    def __init__(self, filename: str, chunks: Iterator[bytes]) -> None:
        self.filename = filename
        self.chunks = chunks


# JSON pages of rows are bounded twice: by rows (the `limit` parameter's maximum) and by cells, so
# a wide indicator table cannot produce a response above Lambda's 6 MB synchronous limit.
ROW_PAGE_MAX = 10_000
CELL_BUDGET = 200_000


def page_limit(limit: int, columns: int) -> int:
    return max(1, min(limit, CELL_BUDGET // max(1, columns)))


def next_offset(offset: int, returned: int, total: int) -> int | None:
    nxt = offset + returned
    return nxt if returned and nxt < total else None


# Query parameters of the row reads (ohlcv, indicators, predictions, trades).
Format = Annotated[Literal["json", "csv"], QueryParameter(name="format", description="json (paged) or csv")]
RowLimit = Annotated[int | None, QueryParameter(
    ge=1, le=ROW_PAGE_MAX, description=f"JSON page size (default 1000, at most {ROW_PAGE_MAX}; wide tables are "
    f"capped at {CELL_BUDGET} cells per page); for CSV an optional row cap")]
FromTs = Annotated[int | None, QueryParameter(name="from", ge=0, le=253_402_300_799,
                                         description="first timestamp, unix seconds, inclusive")]
ToTs = Annotated[int | None, QueryParameter(name="to", ge=0, le=253_402_300_799,
                                       description="last timestamp, unix seconds, inclusive")]
TsUnit = Annotated[Literal["s", "ms", "us"], QueryParameter(
    description="unit of the `timestamp` column in the output (default: unix seconds)")]


def respond(result: Any) -> Response[Any]:
    """A service result as a response: CSV bodies are streamed, anything else is JSON. Handlers
    that can answer CSV are annotated `-> Response[<the JSON type>]`: Litestar picks its response
    path from the annotation (a sync_to_thread handler's return value is not inspected)."""
    if isinstance(result, CsvBody):
        return Stream(result.chunks, media_type="text/csv", headers=csv_headers(result.filename))
    return Response(result)


async def in_thread(fn: Any, /, *args: Any, **kwargs: Any) -> Any:
    """Run a blocking service call in a worker thread, from an `async def` handler.

    Why not `sync_to_thread=True` for handlers annotated `-> Response[...]`: Litestar 2 calls
    `on_registration` again for every handler already on a path when another method joins that
    path (litestar-org/litestar#4738, fixed in v3 only), which wraps a sync_to_thread handler twice;
    the data-returning path hides that (it awaits the leftover coroutine), the Response path does
    not. Handlers that return a Response are therefore async and offload here."""
    import functools

    import anyio.to_thread

    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))
