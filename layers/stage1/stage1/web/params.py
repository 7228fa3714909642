"""Path and query parameter types that several functions share. The bounds live in the types, so a
bad value is a 400 from the framework before a handler runs."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar.params import Parameter, PathParameter, QueryParameter

from stage1.core.paging import CELL_BUDGET, MAX_PAGE, ROW_PAGE_MAX
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
