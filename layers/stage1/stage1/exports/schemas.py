from __future__ import annotations

from typing import Annotated, Literal

from litestar.params import QueryParameter

from stage1.core.structs import Model

Mode = Literal["auto", "inline", "job"]


class ExportResult(Model):
    """`result` of a COMPLETED export job. `rows` counts CSV lines after the header (a value with an
    embedded newline counts twice); it is null for Parquet."""

    url: str
    expires_at: str
    bucket: str
    key: str
    format: str
    filename: str
    bytes: int
    rows: int | None
    content_type: str


# The `mode` query parameter of every large read (POST /api/questdb/export and the CSV reads of
# datasets, runs and simulations): docs/questdb.md, "Large reads".
ModeParam = Annotated[Mode, QueryParameter(
    description="CSV: auto (inline when small, else 202 and an export job), inline (always the file; streamed "
                "where the deployment streams, 413 above the cap on Lambda) or job (always 202 and a job)")]
