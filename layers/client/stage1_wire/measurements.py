"""QuestDB tables as the measurements endpoints describe them."""

from __future__ import annotations

from typing import Any

from stage1_wire.base import Model


class Measurement(Model):
    """One QuestDB table as `tables()` reports it. Timestamps are unix seconds (null when empty)."""

    name: str
    row_count: int | None
    first_ts: int | None
    last_ts: int | None
    designated_timestamp: str | None
    partition_by: str
    wal_enabled: bool
    dedup: bool
    table_type: str
    suspended: bool
    wal_pending_rows: int | None


class MeasurementList(Model):
    items: list[Measurement]
    total: int
    prefix: str | None


class MeasurementColumn(Model):
    name: str
    type: str
    indexed: bool
    designated: bool
    dedup_key: bool
    symbol_capacity: int | None = None
    symbol_cached: bool | None = None


class WalState(Model):
    enabled: bool
    suspended: bool
    pending_rows: int | None
    table_txn: int | None
    wal_txn: int | None
    dedup: bool
    dedup_keys: list[str]


class Partitions(Model):
    count: int
    rows: int
    disk_size_bytes: int
    detached: int


class MeasurementDetail(Measurement, kw_only=True):
    columns: list[MeasurementColumn]
    dedup_keys: list[str]
    wal: WalState
    partitions: Partitions
    sample_rows: list[dict[str, Any]]
