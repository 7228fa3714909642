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
from stage1.core.questdb import QueryResult, QuestDBError, get_questdb, ident, quote
from stage1.measurements.schemas import (
    Measurement,
    MeasurementColumn,
    MeasurementDetail,
    MeasurementList,
    Partitions,
    WalState,
)
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
    return _records(get_questdb().exec(f"select {_TABLE_COLUMNS} from tables() order by table_name"))


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


def _needs_partition_bounds(m: Measurement) -> bool:
    # tables() keeps min/max only for WAL tables, and has no row count yet for a WAL table that never
    # had a transaction: those come from table_partitions() instead.
    if m.row_count is None:
        return True
    return m.designated_timestamp is not None and (m.first_ts is None or m.last_ts is None) and m.row_count > 0


def _partition_rows(name: str) -> list[dict[str, Any]]:
    try:
        return _records(get_questdb().exec(f"select * from table_partitions('{ident(name)}')"))
    except QuestDBError as exc:
        raise _not_found_or(exc, name) from exc


def _with_partition_bounds(m: Measurement, partitions: list[dict[str, Any]]) -> Measurement:
    mins = [p["minTimestamp"] for p in partitions if p.get("minTimestamp") and not p.get("detached")]
    maxs = [p["maxTimestamp"] for p in partitions if p.get("maxTimestamp") and not p.get("detached")]
    first = min((_unix(v) for v in mins), default=None)
    last = max((_unix(v) for v in maxs), default=None)
    rows = m.row_count if m.row_count is not None else sum(
        int(p.get("numRows") or 0) for p in partitions if not p.get("detached"))
    return Measurement(**{**_fields(m), "row_count": rows,
                          "first_ts": m.first_ts if m.first_ts is not None else first,
                          "last_ts": m.last_ts if m.last_ts is not None else last})


def _fields(m: Measurement) -> dict[str, Any]:
    return {f: getattr(m, f) for f in Measurement.__struct_fields__}


def list_measurements(prefix: str | None) -> MeasurementList:
    items = [_measurement(row) for row in _tables()]
    if prefix:
        items = [m for m in items if m.name.lower().startswith(prefix.lower())]
    items = [_with_partition_bounds(m, _partition_rows(m.name)) if _needs_partition_bounds(m) else m for m in items]
    return MeasurementList(items=items, total=len(items), prefix=prefix)


def _not_found_or(exc: QuestDBError, name: str) -> Exception:
    if "does not exist" in exc.questdb_message:
        return NotFound("no such measurement", {"measurement": name})
    return exc


def get_measurement(name: str, *, sample: int = 5) -> MeasurementDetail:
    ident(name)
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
    base = _measurement(row)
    if _needs_partition_bounds(base):
        base = _with_partition_bounds(base, partitions)
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
