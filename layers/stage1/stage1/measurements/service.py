"""Table health from QuestDB's own metadata functions (QuestDB 9.3.4, checked on the server):

- `tables()`: designatedTimestamp, partitionBy, walEnabled, dedup, table_type, table_suspended,
  table_row_count, table_min_timestamp / table_max_timestamp (null for non-WAL tables),
  wal_pending_row_count, table_txn, wal_txn;
- `table_columns(name)`: column, type, indexed, designated, upsertKey (the DEDUP key), symbol settings;
- `table_partitions(name)`: per partition numRows, minTimestamp, maxTimestamp, diskSize, detached.

Only our own constant SQL with validated identifiers reaches QuestDB here (HTTP `/exec`).
"""

# ruff: noqa: S608 - every interpolated name has passed `ident()`

from __future__ import annotations

from typing import Any

from stage1.core.errors import NotFound
from stage1.core.questdb import QueryResult, QuestDBError, get_questdb, ident, is_staging, quote
from stage1.measurements.schemas import (
    Measurement,
    MeasurementColumn,
    MeasurementDetail,
    MeasurementList,
    Partitions,
    WalState,
)
from stage1.timeseries.reads import with_table_stats
from stage1.timeseries.timestamps import micros_to_unix, to_micros

_TABLE_COLUMNS = (
    "table_name, designatedTimestamp, partitionBy, walEnabled, dedup, table_type, table_suspended, "
    "table_row_count, table_min_timestamp, table_max_timestamp, "
    "wal_pending_row_count, table_txn, wal_txn"
)


def _records(result: QueryResult) -> list[dict[str, Any]]:
    return result.rows()


def _unix(value: str | None) -> int | None:
    return None if value is None else micros_to_unix(to_micros(value))


def _tables() -> list[dict[str, Any]]:
    """Every table but imports' staging tables: they hold half an import until its commit."""
    rows = _records(get_questdb().exec(f"select {_TABLE_COLUMNS} from tables() order by table_name"))
    return [r for r in rows if not is_staging(str(r["table_name"]))]


def _measurement(row: dict[str, Any]) -> Measurement:
    return Measurement(
        name=row["table_name"],
        row_count=row["table_row_count"],
        first_ts=_unix(row["table_min_timestamp"]),
        last_ts=_unix(row["table_max_timestamp"]),
        designated_timestamp=row["designatedTimestamp"],
        partition_by=row["partitionBy"] or "NONE",
        wal_enabled=bool(row["walEnabled"]),
        dedup=bool(row["dedup"]),
        table_type=_table_type(row["table_type"]),
        suspended=bool(row["table_suspended"]),
        wal_pending_rows=row["wal_pending_row_count"],
    )


def _table_type(code: str | None) -> str:
    return {"T": "table", "M": "materialized_view", "V": "view"}.get(code or "T", str(code))


def _partition_rows(name: str) -> list[dict[str, Any]]:
    try:
        return _records(get_questdb().exec(f"select * from table_partitions('{ident(name)}')"))
    except QuestDBError as exc:
        raise _not_found_or(exc, name) from exc


def _fields(m: Measurement) -> dict[str, Any]:
    return {f: getattr(m, f) for f in Measurement.__struct_fields__}


def list_measurements(prefix: str | None) -> MeasurementList:
    rows = _tables()
    if prefix:
        rows = [r for r in rows if str(r["table_name"]).lower().startswith(prefix.lower())]
    items = [_measurement(with_table_stats(row)) for row in rows]  # counted only where tables() has none
    return MeasurementList(items=items, total=len(items), prefix=prefix)


def _not_found_or(exc: QuestDBError, name: str) -> Exception:
    if "does not exist" in exc.questdb_message:
        return NotFound("no such measurement", {"measurement": name})
    return exc


def get_measurement(name: str, *, sample: int = 5) -> MeasurementDetail:
    ident(name)
    if is_staging(name):  # not listed, so not there: the same 404 as a missing table
        raise NotFound("no such measurement", {"measurement": name})
    rows = [r for r in _tables() if r["table_name"].lower() == name]
    if not rows:
        raise NotFound("no such measurement", {"measurement": name})
    row = rows[0]
    qdb = get_questdb()
    try:
        column_rows = _records(qdb.exec(f"select * from table_columns('{ident(name)}')"))
    except QuestDBError as exc:
        raise _not_found_or(exc, name) from exc
    partitions = _partition_rows(name)
    base = _measurement(with_table_stats(row))
    columns = [
        MeasurementColumn(
            name=c["column"], type=c["type"], indexed=bool(c["indexed"]), designated=bool(c["designated"]),
            dedup_key=bool(c.get("upsertKey")),
            symbol_capacity=c["symbolCapacity"] if c["type"] == "SYMBOL" else None,
            symbol_cached=bool(c["symbolCached"]) if c["type"] == "SYMBOL" else None,
        )
        for c in column_rows
    ]
    dedup_keys = [c.name for c in columns if c.dedup_key]
    samples: list[dict[str, Any]] = []
    if sample > 0:
        # The latest rows (QuestDB's negative limit: the last N, in table order).
        samples = qdb.exec(f"select * from {quote(name)} limit -{int(sample)}").rows()
    attached = [p for p in partitions if not p.get("detached")]
    return MeasurementDetail(
        **_fields(base),
        columns=columns,
        dedup_keys=dedup_keys,
        wal=WalState(enabled=base.wal_enabled, suspended=base.suspended, pending_rows=row["wal_pending_row_count"],
                     table_txn=row["table_txn"], wal_txn=row["wal_txn"], dedup=base.dedup, dedup_keys=dedup_keys),
        partitions=Partitions(
            count=len(attached),
            rows=sum(int(p.get("numRows") or 0) for p in attached),
            disk_size_bytes=sum(int(p.get("diskSize") or 0) for p in attached),
            detached=len(partitions) - len(attached),
        ),
        sample_rows=samples,
    )
