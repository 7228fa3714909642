"""Dataset versions and which data a run saw (docs/resources.md, "Dataset versions and fingerprints")."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from stage1_wire.base import Model

VersionKind = Literal["ohlcv", "indicators", "record"]


class TableVersion(Model, kw_only=True):
    """One table of a dataset version: rows, first/last designated timestamp (unix seconds) and its
    content fingerprint (sha256 hex; null when the table did not exist)."""

    rows: int
    first_ts: int | None
    last_ts: int | None
    fingerprint: str | None


class DatasetVersion(Model, kw_only=True):
    """A change of a dataset's content: made by an import of one table (`kind` ohlcv / indicators,
    with its `upload_id` / `job_id`) or by `POST /api/datasets` with `record_questdb` (`record`)."""

    version: int
    created_at: datetime
    kind: VersionKind
    upload_id: uuid.UUID | None
    job_id: uuid.UUID | None
    fingerprint: str
    ohlcv: TableVersion
    indicator: TableVersion


class DatasetVersionList(Model, kw_only=True):
    """`GET /api/datasets/{id}/versions`: newest first."""

    dataset_id: uuid.UUID
    version: int
    versions: list[DatasetVersion]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class SeenVersion(Model, kw_only=True):
    """The dataset's version when a run or simulation was stored (`version` 0: the dataset had no
    recorded version then; fingerprints null, rows and bounds from the dataset row)."""

    version: int
    fingerprint: str | None
    created_at: datetime | None
    ohlcv: TableVersion
    indicator: TableVersion
