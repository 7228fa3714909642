"""Series at chart resolution: a QuestDB `SAMPLE BY` read of at most `max_points` buckets.

The bucket width is a whole number of seconds: the span between the first and the last observation
inside the requested window (`from`/`to`, else the whole table), divided by N, rounded *down* and plus
one second, so `span / width < N` and the buckets (counted from the first observation) are at most N.
Buckets start at the first observation in the window (`SAMPLE BY <w>s FROM <first> TO <last>`: that is
ALIGN TO FIRST OBSERVATION, written with FROM/TO because QuestDB runs that form in parallel, ~2x faster
than `ALIGN TO FIRST OBSERVATION` on 2 cores). A width of an hour or more is a whole number of hours
counted from the hour of the first observation (the same rule with the origin floored to the hour), so
an hourly rollup gives exactly the same buckets (`stage1.timeseries.rollup`). Each bucket's
`timestamp` is its start. The inner query is also capped at N+1 rows: a reader that ever sees N+1
widens the buckets (`widen`).

Aggregates: OHLCV `open` first, `high` max, `low` min, `close` last, `volume` sum (numeric columns
only, matched by name case-insensitively); every other column, and every column of indicator and
prediction tables, is `last` (the value the series had at the end of the bucket; `last` works for
every QuestDB type, a mean would not, and a chart of predictions/thresholds should show observed values).

SQL here is built from identifiers that passed `ident()` / the column pattern of `reads`, and integers
or parsed datetimes rendered by `literal()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stage1.core.csvtext import CsvBody, csv_lines
from stage1.core.paging import page_limit
from stage1.core.questdb import get_questdb, literal, quote
from stage1.timeseries import reads

# SAMPLE BY aggregates of an OHLCV table by column name; numeric columns only.
OHLCV_AGGREGATES = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
_NUMERIC = {"DOUBLE", "FLOAT", "INT", "LONG", "SHORT", "BYTE", "DECIMAL"}
MICROS = 1_000_000
HOUR = 3600
# The `max_points` bounds (the web layer's parameter carries them; a chart is at most a few thousand px).
MIN_POINTS, MAX_POINTS = 2, 10_000


def bucket_seconds(first_us: int, last_us: int, max_points: int) -> int:
    """Smallest whole-second width w with (last - first) / w < max_points (so at most N buckets)."""
    return (max(0, last_us - first_us) // (max_points * MICROS)) + 1


def buckets(first_us: int, last_us: int, max_points: int) -> tuple[int, int]:
    """(origin in µs, width in seconds): the first observation and `bucket_seconds`, or, for a width of
    an hour or more, the hour of the first observation and the smallest whole number of hours with
    (last - origin) / width < max_points."""
    width = bucket_seconds(first_us, last_us, max_points)
    if width < HOUR:
        return first_us, width
    origin = first_us - first_us % (HOUR * MICROS)
    return origin, ((last_us - origin) // (max_points * HOUR * MICROS) + 1) * HOUR


def bucket_count_bound(first_us: int, last_us: int, width_s: int) -> int:
    """How many buckets of `width_s` seconds from `first_us` can hold observations up to `last_us`."""
    return max(0, last_us - first_us) // (width_s * MICROS) + 1


def aggregates(columns: list[reads.TableColumn], *, ohlcv: bool) -> dict[str, str]:
    """The aggregate of each column (by its table name): see the module doc."""
    out = {}
    for col in columns:
        fn = OHLCV_AGGREGATES.get(col.name.lower()) if ohlcv else None
        if fn is None or fn != "last" and col.type.upper() not in _NUMERIC:
            fn = "last"
        out[col.name] = fn
    return out


def _at(micros: int) -> str:
    return literal(datetime.fromtimestamp(micros // MICROS, UTC).replace(microsecond=micros % MICROS))


@dataclass
class SampledQuery:
    """A `RowQuery`'s window and columns read as `SAMPLE BY width` buckets; the same interface as
    `RowQuery` (`select_sql`, `count_sql`, `output_columns`) so `read_page` and `open_csv` serve it."""

    rows: reads.RowQuery
    functions: dict[str, str]
    width_s: int
    first_us: int  # the buckets' origin (the first observation, or its hour)
    last_us: int
    max_points: int
    source: str | None = None  # the table's hourly rollup when it gives the same buckets (rollup.py)

    def _inner(self) -> str:
        r = self.rows
        ts = reads._q(r.ts_column)
        outputs = [ts] + [f"{self.functions.get(c, 'last')}({reads._q(c)}) as {reads._q(c)}"
                          for c in r.columns if c not in r.missing]
        return (f"select {', '.join(outputs)} from {quote(self.source or r.table)}{r._where()} "  # noqa: S608
                f"sample by {int(self.width_s)}s from {_at(self.first_us)} to {_at(self.last_us + 1)} "
                f"limit {int(self.max_points) + 1}")

    def select_sql(self, limit: int | None = None, offset: int = 0) -> str:
        r = self.rows
        outputs = [f'{r._ts_expr()} as "timestamp"']
        outputs += [f"null as {reads._q(c)}" if c in r.missing else reads._q(c) for c in r.columns]
        page = ""
        if limit is not None or offset:
            end = offset + limit if limit is not None else self.max_points + 1
            page = f" limit {int(offset)}, {int(end)}"
        return f"select {', '.join(outputs)} from ({self._inner()}){page}"  # noqa: S608 - validated parts

    def count_sql(self) -> str:
        return f"select count() as n from ({self._inner()})"  # noqa: S608 - validated parts

    @property
    def output_columns(self) -> list[str]:
        return self.rows.output_columns


def window(query: reads.RowQuery, *, timeout: float | None = None) -> tuple[int, int] | None:
    """(first, last) observation in µs inside the query's window and filters, or None when empty."""
    ts = reads._q(query.ts_column)
    sql = (f"select cast(min({ts}) as long) as lo, cast(max({ts}) as long) as hi "  # noqa: S608 - validated parts
           f"from {quote(query.table)}{query._where()}")
    rows = get_questdb().exec(sql, timeout=timeout).rows()
    if not rows or rows[0]["lo"] is None:
        return None
    scale = 1000 if query.ts_type.upper() == "TIMESTAMP_NS" else 1  # ns tables: buckets still in µs terms
    return int(rows[0]["lo"]) // scale, int(rows[0]["hi"]) // scale


def sampled(query: reads.RowQuery, functions: dict[str, str], max_points: int, *, rollup: bool = False,
            timeout: float | None = None) -> SampledQuery | None:
    """The SAMPLE BY read of `query` in at most `max_points` buckets, or None when the window is empty.
    With `rollup`, from the table's hourly rollup when that gives exactly the same buckets."""
    span = window(query, timeout=timeout)
    if span is None:
        return None
    origin, width = buckets(*span, max_points)
    plan = SampledQuery(query, functions, width, origin, span[1], max_points)
    if rollup and _hour_aligned(query, width):
        from stage1.timeseries import rollup as rollups

        columns = [c for c in query.columns if c not in query.missing]
        plan.source = rollups.fresh_view(query.table, query.ts_column, columns)
    return plan


def _hour_aligned(query: reads.RowQuery, width_s: int) -> bool:
    """Every hour of the window is wholly in or out of it, and buckets are whole hours from an hour."""
    return (width_s % HOUR == 0 and not query.filters and (query.from_s is None or query.from_s % HOUR == 0)
            and (query.to_s is None or query.to_s >= reads.MAX_UNIX or (query.to_s + 1) % HOUR == 0))


def widen(query: SampledQuery) -> SampledQuery:
    """The same read with buckets twice as wide (a safety net: the width rule already gives <= N)."""
    return SampledQuery(query.rows, query.functions, query.width_s * 2, query.first_us, query.last_us,
                        query.max_points, query.source)


def read_points(query: SampledQuery, limit: int, offset: int, *,
                timeout: float | None = None) -> tuple[SampledQuery, list[dict[str, Any]], int]:
    """One JSON page of buckets (the query actually used, the rows, the total), verified to be at most
    `max_points` in all: one pass when the page holds the rest of the buckets (the usual case)."""
    for _ in range(4):
        data, total = reads.read_page(query, limit, offset, timeout=timeout, count_first=False)
        if total <= query.max_points:
            return query, data, total
        query = widen(query)
    raise AssertionError("SAMPLE BY returned more buckets than the width allows")  # pragma: no cover


@dataclass
class Points:
    """A JSON page of buckets."""

    rows: list[dict[str, Any]]
    total: int
    limit: int
    bucket_seconds: int | None


def csv_headers(width_s: int | None) -> dict[str, str]:
    """What a downsampled CSV answer says about itself (its body has the same columns as undownsampled)."""
    out = {"x-stage1-downsampled": "true"}
    if width_s is not None:
        out["x-stage1-bucket-seconds"] = str(width_s)
    return out


def read(query: reads.RowQuery, functions: dict[str, str], max_points: int, *, fmt: str, limit: int | None,
         offset: int, filename: str, rollup: bool = False) -> Points | CsvBody:
    """The downsampled read of `query`: JSON `Points` (a page, `limit` defaulting to all N buckets and
    capped by the cell budget) or a CSV of at most N buckets (an outer `limit` guarantees it)."""
    plan = sampled(query, functions, max_points, rollup=rollup)
    width = plan.width_s if plan else None
    if fmt == "csv":
        if plan is None:
            return CsvBody(filename, csv_lines(query.output_columns, iter(())), csv_headers(None))
        rows = max(0, min(limit or max_points, max_points - offset))
        return CsvBody(filename, reads.open_csv(plan, rows, offset), csv_headers(width))  # type: ignore[arg-type]
    size = page_limit(min(limit or max_points, max_points), len(query.output_columns))
    if plan is None:
        return Points([], 0, size, None)
    plan, data, total = read_points(plan, size, offset)
    return Points(data, total, size, plan.width_s)
