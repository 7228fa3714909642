"""Waiting for QuestDB to apply a WAL table's writes.

An ILP-over-HTTP request returns once QuestDB has committed the rows to the table's write-ahead
log; a background job applies them to the table later. Until then a `count()` does not see them.
`wait_applied` polls `wal_tables()` (QuestDB 9.x columns: `name`, `suspended`, `writerTxn`,
`bufferedTxnSize`, `sequencerTxn`, `errorTag`, `errorMessage`, `memoryPressure`) until the
writer has caught up with the sequencer, with a bounded wait.
"""

from __future__ import annotations

import time

from stage1.core.errors import ServiceUnavailable
from stage1.core.questdb import get_questdb, ident

DEFAULT_TIMEOUT = 15.0


def wal_status(table: str, *, timeout: float = 5.0) -> dict[str, object] | None:
    """The table's `wal_tables()` row, or None when it is not a WAL table (or does not exist)."""
    columns = "name, suspended, writerTxn, sequencerTxn, errorTag, errorMessage"
    sql = f"select {columns} from wal_tables() where name = '{ident(table)}'"  # noqa: S608 - validated
    rows = get_questdb().exec(sql, timeout=timeout).rows()
    return rows[0] if rows else None


def wait_applied(table: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Return once every committed WAL transaction of `table` is applied; 503 if the table is
    suspended or the writer has not caught up within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        remaining = deadline - time.monotonic()
        status = wal_status(table, timeout=max(1.0, min(5.0, remaining)))
        if status is None:
            return  # not a WAL table: writes are visible once acknowledged
        if status["suspended"]:
            raise ServiceUnavailable(
                "questdb", f"table {table} is suspended",
                {"table": table, "error_tag": status["errorTag"], "questdb": status["errorMessage"]},
            )
        if int(status["writerTxn"]) >= int(status["sequencerTxn"]):  # type: ignore[call-overload]
            return
        if remaining <= 0:
            raise ServiceUnavailable(
                "questdb", f"writes to {table} were not applied within {timeout:g} s",
                {"table": table, "writer_txn": status["writerTxn"], "sequencer_txn": status["sequencerTxn"]},
            )
        time.sleep(min(delay, max(0.0, remaining)))
        delay = min(delay * 2, 0.25)
