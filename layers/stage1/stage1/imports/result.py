"""What an import job records as its `result` (JSON; clients read these keys: keep them)."""

from __future__ import annotations

from typing import Any

import msgspec


class ImportResult(msgspec.Struct, omit_defaults=True):
    measurement: str
    kind: str
    format: str
    rows: int
    rows_written: int
    table_rows: int
    bytes: int
    first_ts: int | None
    last_ts: int | None
    columns: list[str] | None
    seconds: float
    wal_applied: bool
    staging_copy_seconds: float
    upload_id: str | None
    # Dataset imports only: the dataset row's counts and bounds after the import (absent otherwise).
    dataset: dict[str, Any] | None = None
    # Chunked uploads only: how many chunks the rows came in (absent otherwise).
    chunks: int | None = None
    # Dataset imports only: who computed the version's fingerprint of the imported table, "importer"
    # (a first import, from the rows it sent) or "questdb" (a scan of the table); absent otherwise.
    fingerprint_source: str | None = None


class ImportFailure(msgspec.Struct):
    """The `result` of a FAILED import: where the file went wrong, and that nothing was kept."""

    error_details: dict[str, Any]
    measurement: str
