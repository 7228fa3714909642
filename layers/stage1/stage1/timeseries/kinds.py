"""The kinds of QuestDB table the service writes, and how each is created.

Every table is a WAL table with `DEDUP UPSERT KEYS` that include the designated timestamp
`timestamp`, created up front (before any row is sent): a re-delivered event, a retried import
or a re-sent request then upserts the same rows instead of duplicating them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from stage1.core.questdb import get_questdb, quote

TIMESTAMP = "timestamp"


class Kind(StrEnum):
    OHLCV = "ohlcv"
    INDICATORS = "indicators"
    PREDICTIONS = "predictions"
    TRADES = "trades"
    RAW = "raw"


@dataclass(frozen=True)
class TableSpec:
    required: tuple[str, ...]  # besides the timestamp column
    columns: tuple[tuple[str, str], ...]  # declared up front (name, QuestDB type); others auto-create
    dedup_keys: tuple[str, ...]  # always starts with the designated timestamp


SPECS: dict[Kind, TableSpec] = {
    Kind.OHLCV: TableSpec(
        required=("open", "high", "low", "close", "volume"),
        columns=(("open", "DOUBLE"), ("high", "DOUBLE"), ("low", "DOUBLE"), ("close", "DOUBLE"), ("volume", "DOUBLE")),
        dedup_keys=(TIMESTAMP,),
    ),
    Kind.INDICATORS: TableSpec(required=(), columns=(), dedup_keys=(TIMESTAMP,)),
    Kind.PREDICTIONS: TableSpec(
        required=("prediction",),
        columns=(("bar_index", "LONG"), ("fold_number", "INT"), ("prediction", "DOUBLE"), ("target", "DOUBLE")),
        # Walk-forward test windows may overlap between folds: a row is one (time, fold).
        dedup_keys=(TIMESTAMP, "fold_number"),
    ),
    Kind.TRADES: TableSpec(
        required=("side", "entry_price", "exit_price", "quantity", "pnl"),
        columns=(("trade_index", "LONG"), ("side", "SYMBOL"), ("entry_price", "DOUBLE"), ("exit_price", "DOUBLE"),
                 ("quantity", "DOUBLE"), ("pnl", "DOUBLE"), ("return_pct", "DOUBLE")),
        # Several trades can share a bar; the trade's ordinal in its source keeps them apart.
        dedup_keys=(TIMESTAMP, "trade_index"),
    ),
    # Arbitrary frames: the row's ordinal in its file makes a re-import idempotent without
    # collapsing rows that share a timestamp.
    Kind.RAW: TableSpec(required=(), columns=(("row_id", "LONG"),), dedup_keys=(TIMESTAMP, "row_id")),
}

TIMESTAMP_ALIASES = ("timestamp_unix", "timestamp")


def missing_columns(kind: Kind, present: list[str] | tuple[str, ...]) -> list[str]:
    """Required columns absent from `present` (a timestamp column is always required)."""
    names = {name.lower() for name in present}
    missing = [] if names & set(TIMESTAMP_ALIASES) else ["timestamp_unix|timestamp"]
    return missing + [col for col in SPECS[kind].required if col not in names]


def partition_for(granularity: str | None) -> str:
    """Partitions sized for bars of this granularity: enough rows per partition to be efficient,
    few enough partitions to stay cheap (`1s`/`30s` → DAY, minutes → MONTH, hours and up → YEAR)."""
    g = (granularity or "").strip().lower()
    if g.endswith("ms") or g.endswith("s") and g[:-1].isdigit():
        return "DAY"
    if g.endswith("m") and g[:-1].isdigit() or g.endswith("min"):
        return "MONTH"
    if g and g[-1] in "hdwy" and g[:-1].isdigit():
        return "YEAR"
    return "MONTH"


def create_table_sql(kind: Kind, name: str, granularity: str | None = None) -> str:
    spec = SPECS[kind]
    columns = ", ".join([f"{TIMESTAMP} TIMESTAMP", *(f"{quote(c, 'column')} {t}" for c, t in spec.columns)])
    keys = ", ".join(spec.dedup_keys)
    return (
        f"CREATE TABLE IF NOT EXISTS {quote(name)} ({columns}) TIMESTAMP({TIMESTAMP}) "
        f"PARTITION BY {partition_for(granularity)} WAL DEDUP UPSERT KEYS({keys})"
    )


def ensure_table(kind: Kind, name: str, granularity: str | None = None) -> None:
    get_questdb().exec(create_table_sql(kind, name, granularity))


def drop_table(name: str) -> None:
    get_questdb().exec(f"DROP TABLE IF EXISTS {quote(name)}")
