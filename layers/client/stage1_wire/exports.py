"""The large-read modes and the result of a COMPLETED export job (docs/questdb.md, "Large reads")."""

from __future__ import annotations

from typing import Literal

from stage1_wire.base import Model

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
