"""An hourly rollup of a large OHLCV table: a QuestDB materialized view that the downsampled read uses
when it gives exactly the same buckets as the table itself (`stage1.timeseries.downsample`).

A keyed SAMPLE BY over 10M rows is CPU-bound (~0.5 s on 2 cores); over the 1 h view (60x fewer rows
for 1-minute bars) it is tens of ms. The view is `SAMPLE BY 1h` of the table with the same aggregates
as the read (first/max/min/last/sum), which compose exactly: the first of hourly firsts is the first,
the max of maxes the max, the sum of sums the sum. It is used only when that is exact:
- the bucket width is a whole number of hours and the buckets start on an hour (the width rule makes
  both so for widths of an hour or more, whichever source is read);
- the window's `from` and `to + 1` fall on hours (or are absent), so every hour is wholly in or out;
- the view is `valid` and refreshed up to the table's last transaction (else the table is read).
It is created on the first downsampled read of a WAL table with at least `ROLLUP_MIN_ROWS` rows
(QuestDB builds and then maintains it incrementally, asynchronously); that read and any read until
the view has caught up use the table. `cleanup._drop` drops the view with its table; a view QuestDB
marks invalid (its table dropped or replaced another way) is dropped and built again. The view's name
is derived from the table's (`r1h_` + a hash), so it passes `ident()` whatever the table's length.
"""

from __future__ import annotations

import hashlib

from stage1.core.logging import get_logger
from stage1.core.questdb import get_questdb, ident, quote
from stage1.timeseries import reads

log = get_logger("timeseries.rollup")

HOUR = 3600
ROLLUP_MIN_ROWS = 1_000_000
STATE_TIMEOUT = 3.0


def view_name(table: str) -> str:
    return ident("r1h_" + hashlib.sha256(table.lower().encode()).hexdigest()[:32])


def _create(table: str, ts_column: str) -> None:
    """The view over every column of the table (whichever columns this read asked for)."""
    from stage1.timeseries.downsample import aggregates

    columns = [c for c in reads.table_columns(table, timeout=STATE_TIMEOUT) if not c.designated]
    functions = aggregates(columns, ohlcv=True)
    outputs = ", ".join([reads._q(ts_column)] + [f"{fn}({reads._q(c)}) as {reads._q(c)}"
                                                  for c, fn in functions.items()])
    sql = (f"create materialized view if not exists {quote(view_name(table))} as ("  # noqa: S608 - validated parts
           f"select {outputs} from {quote(table)} sample by 1h) partition by year")
    get_questdb().exec(sql, timeout=STATE_TIMEOUT)
    log.info("created the hourly rollup %s of %s", view_name(table), table)


def fresh_view(table: str, ts_column: str, columns: list[str]) -> str | None:
    """The name of the table's rollup when it is valid, caught up and holds `columns`; else None (and the
    view is created when the table is large enough to want one). Never raises: the table is the fallback."""
    name = view_name(table)
    try:
        qdb = get_questdb()
        sql = ("select view_status, refresh_base_table_txn, base_table_txn from materialized_views() "  # noqa: S608
               f"where view_name = '{name}'")  # name passed ident()
        rows = qdb.exec(sql, timeout=STATE_TIMEOUT).rows()
        if rows and rows[0]["view_status"] == "invalid":  # its table was dropped or replaced: build it again
            drop_view(table, STATE_TIMEOUT)
            rows = []
        if not rows:
            state = reads.table_states([table], timeout=STATE_TIMEOUT, tolerant=False)[table.lower()]
            if state.wal_enabled and (state.row_count or 0) >= ROLLUP_MIN_ROWS:
                _create(table, ts_column)
            return None
        row = rows[0]
        # 'refreshing' (the first build, or catching up under load) or behind the table: the table answers.
        # Only 'invalid' is dropped above: dropping a refreshing view would throw its build away each read.
        if row["view_status"] != "valid" or row["refresh_base_table_txn"] != row["base_table_txn"]:
            return None
        held = {c.name for c in reads.table_columns(name, timeout=STATE_TIMEOUT)}
        return name if set(columns) <= held else None
    except Exception as exc:  # the rollup only makes a read faster; the table answers without it
        log.warning("rollup of %s not used: %s", table, exc)
        return None


def drop_view(table: str, timeout: float) -> None:
    get_questdb().exec(f"drop materialized view if exists {quote(view_name(table))}", timeout=timeout)
