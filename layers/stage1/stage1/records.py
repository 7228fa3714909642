"""Helpers shared by the datasets, runs and simulations areas: id parsing, edge types for slugs
and measurement names, timestamps in and out, JSON columns, CSV responses."""

from __future__ import annotations

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

NAME_PATTERN = r"^[a-z0-9_]{1,63}$"
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


def csv_lines(header: list[str], rows: Iterator[list[Any]]) -> Iterator[bytes]:
    """CSV text (RFC 4180, `\\n` line ends, nulls empty) in chunks of about 64 KiB."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
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
