"""Path and query parameter types that several functions share. The bounds live in the types, so a
bad value is a 400 from the framework before a handler runs."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar.params import Parameter, PathParameter, QueryParameter

from stage1.core.filters import MAX_FILTER_CHARS
from stage1.core.paging import CELL_BUDGET, MAX_PAGE, ROW_PAGE_MAX
from stage1.core.ranking import MAX_CURSOR_CHARS, MAX_SORT_CHARS
from stage1.timeseries.downsample import MAX_POINTS, MIN_POINTS
from stage1_wire.exports import Mode

# Lists.
Limit = Annotated[int, Parameter(ge=1, le=MAX_PAGE, description=f"Page size, 1-{MAX_PAGE}")]
Offset = Annotated[int, Parameter(ge=0, le=100_000_000, description="Items to skip")]
# Free-text filters are bounded too: they end up in an ILIKE pattern (as a bind parameter).
Search = Annotated[str | None, Parameter(max_length=200, description="Case-insensitive substring match")]

# References.
DatasetRef = Annotated[str, PathParameter(description="dataset UUID or slug", max_length=100)]
DatasetFilter = Annotated[str | None, QueryParameter(description="dataset UUID or slug", max_length=100)]

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

# The `mode` query parameter of every large read (POST /api/questdb/export and the CSV reads of
# datasets, runs and simulations): docs/questdb.md, "Large reads".
ModeParam = Annotated[Mode, QueryParameter(
    description="CSV: auto (inline when small, else 202 and an export job), inline (always the file; streamed "
                "where the deployment streams, 413 above the cap on Lambda) or job (always 202 and a job)")]

# Search and rank of the run and simulation lists (stage1.core.filters, stage1.core.ranking;
# docs/resources.md, "Search and rank"). The filter's own bound (MAX_FILTER_CHARS) is checked by the
# parser, which names the position; the framework's larger bound only stops a megabyte early.
FilterExpr = Annotated[str | None, QueryParameter(
    name="filter", max_length=10 * MAX_FILTER_CHARS,
    description=f"A filter expression (at most {MAX_FILTER_CHARS} characters), e.g. "
    "`summary_metrics.sharpe > 1.2 and hyperparameters.max_depth = 6 and status = 'COMPLETED'`: "
    "= != < <= > >=, and, or, not, parentheses, in (...), like, ilike, is [not] null; numbers compare as "
    "numbers, 'strings' as strings. A bad expression is 400 naming details.position and details.token.")]
SortKey = Annotated[str, QueryParameter(
    max_length=MAX_SORT_CHARS, description="`field` ascending or `-field` descending: a column, "
    "`summary_metrics.<key>` (and the list's other JSON documents) or, for runs, "
    "`folds.metrics.<key>.mean|min|max`; missing values last. Ties are broken by the id.")]
Cursor = Annotated[str | None, QueryParameter(
    max_length=MAX_CURSOR_CHARS, description="`next_cursor` of the previous page (same filter and sort): "
    "keyset paging, stable under ties and inserts. Not together with offset.")]

# Chart resolution (docs/resources.md, "Series at chart resolution"): SAMPLE BY into at most N buckets.
MaxPoints = Annotated[int | None, QueryParameter(
    ge=MIN_POINTS, le=MAX_POINTS, description=f"downsample to at most this many points ({MIN_POINTS}-{MAX_POINTS}): "
    "SAMPLE BY buckets of "
    "`bucket_seconds` whole seconds from the first observation in the window; the JSON answer adds "
    "`downsampled: true`, `bucket_seconds` and `max_points`, a CSV answer the headers X-Stage1-Downsampled "
    "and X-Stage1-Bucket-Seconds")]
