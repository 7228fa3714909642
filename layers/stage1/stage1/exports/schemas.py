"""The export job"s wire types (`stage1_wire.exports`) and the server-side `mode` query parameter."""

from __future__ import annotations

from typing import Annotated

from litestar.params import QueryParameter

from stage1_wire.exports import (
    ExportResult,
    Mode,
)

# The `mode` query parameter of every large read (POST /api/questdb/export and the CSV reads of
# datasets, runs and simulations): docs/questdb.md, "Large reads". Litestar"s type: server-side only.
ModeParam = Annotated[Mode, QueryParameter(
    description="CSV: auto (inline when small, else 202 and an export job), inline (always the file; streamed "
                "where the deployment streams, 413 above the cap on Lambda) or job (always 202 and a job)")]

__all__ = ["ExportResult", "Mode", "ModeParam"]
