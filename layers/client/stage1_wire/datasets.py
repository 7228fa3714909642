"""Edge types of the datasets resource (field names fixed by CONTRACT.md)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from stage1_wire.base import Model
from stage1_wire.dataset_versions import DatasetVersion
from stage1_wire.names import ClientTime, Measurement, Slug, UnixSeconds

Count = Annotated[int, msgspec.Meta(ge=0, le=2**62)]
Label = Annotated[str, msgspec.Meta(max_length=64)]

DatasetSort = Literal[
    "created_at", "-created_at", "updated_at", "-updated_at", "dataset_slug", "-dataset_slug",
    "symbol", "-symbol", "granularity", "-granularity",
]


class DatasetIn(Model, kw_only=True):
    """`POST /api/datasets`: an upsert by `dataset_slug` (the desktop's Stage1MetadataWriter payload).

    Fields left out (or null) keep their stored value on update and take their default on insert.
    With `record_questdb` the row counts and timestamp bounds are read from QuestDB instead."""

    dataset_slug: Slug
    dataset_id: uuid.UUID | None = None
    symbol: Label | None = None
    granularity: Label | None = None
    ohlcv_measurement: Measurement | None = None
    indicator_measurement: Measurement | None = None
    ohlcv_rows: Count | None = None
    indicator_rows: Count | None = None
    ohlcv_first_ts: UnixSeconds | None = None
    ohlcv_last_ts: UnixSeconds | None = None
    indicator_first_ts: UnixSeconds | None = None
    indicator_last_ts: UnixSeconds | None = None
    metadata: dict[str, Any] | None = None
    source: Label | None = None
    created_at: ClientTime | None = None
    record_questdb: bool = False


class TableState(Model):
    """A QuestDB table as `tables()` sees it right now. `exists` is null (with `error`) when
    QuestDB could not be asked."""

    name: str
    exists: bool | None
    row_count: int | None = None
    first_ts: int | None = None
    last_ts: int | None = None
    designated_timestamp: str | None = None
    partition_by: str | None = None
    wal_enabled: bool | None = None
    dedup: bool | None = None
    suspended: bool | None = None
    wal_pending_rows: int | None = None
    error: str | None = None


class QuestDBState(Model):
    ohlcv: TableState
    indicator: TableState


class DatasetLinks(Model):
    self: str
    runs: str
    simulations: str
    ohlcv: str
    indicators: str


class Dataset(Model, kw_only=True):
    dataset_id: uuid.UUID
    dataset_slug: str
    symbol: str
    granularity: str
    ohlcv_measurement: str
    indicator_measurement: str
    ohlcv_rows: int
    indicator_rows: int
    ohlcv_first_ts: int | None
    ohlcv_last_ts: int | None
    indicator_first_ts: int | None
    indicator_last_ts: int | None
    metadata: dict[str, Any]
    source: str
    created_at: datetime
    updated_at: datetime
    related_runs: int
    related_simulations: int
    questdb_state: QuestDBState | None
    links: DatasetLinks
    # Aliases of ohlcv_rows / indicator_rows under the names an older desktop build reads.
    ohlcv_row_count: int
    indicator_row_count: int
    # The content version (0: none recorded yet) and, in the detail only, the latest versions, newest
    # first (at most 50; all of them: GET /api/datasets/{id}/versions).
    version: int = 0
    versions: list[DatasetVersion] | None = None


class DatasetList(Model):
    datasets: list[Dataset]
    total: int
    limit: int
    offset: int
    # Where the next page starts (None on the last): a page ends early, with fewer than `limit`
    # datasets, when their metadata (the client's JSON) reaches the page's byte cap.
    next_offset: int | None = None


class DatasetDeleted(Model):
    dataset_id: uuid.UUID
    dataset_slug: str
    deleted: bool
    runs_deleted: int
    simulations_deleted: int
    questdb_tables_dropped: list[str]
    # Tables that could not be dropped (QuestDB down): name -> error. Nothing references them.
    questdb_tables_left: dict[str, str]


class Rows(Model):
    """A page of rows of a QuestDB measurement; `timestamp` first (unix seconds by default)."""

    measurement: str
    columns: list[str]
    rows: list[dict[str, Any]]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class DownsampledRows(Rows, kw_only=True):
    """`Rows` read with `max_points=N`: at most N buckets of `bucket_seconds` (null when the window is
    empty), each row's `timestamp` the start of its bucket (docs/resources.md, "Series at chart resolution")."""

    downsampled: bool = True
    bucket_seconds: int | None = None
    max_points: int
