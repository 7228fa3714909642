"""Dropping the QuestDB tables a deleted or failed record owned (`stage1_questdb_tables`).

Always after the Postgres transaction that released them has committed, never inside it, and
within the caller's time budget. A table QuestDB could not drop stays registered to its (gone)
record, so the sweeper's next pass (`sweep_orphans`) drops it: nothing is left that nobody owns.
"""

from __future__ import annotations

from stage1.core import db
from stage1.core.budget import Budget
from stage1.core.errors import to_stage1_error
from stage1.core.logging import get_logger
from stage1.core.questdb import get_questdb, quote
from stage1.timeseries import ownership as own
from stage1.timeseries import rollup

log = get_logger("timeseries.cleanup")

DROP_TIMEOUT = 5.0  # one DROP TABLE at most
_KEEP = ("insert into stage1_questdb_tables (table_name, owner_kind, owner_id, role, owned) "
         "values (%s, %s, %s, %s, true) on conflict (table_name) do nothing")
_FORGET = ("delete from stage1_questdb_tables where table_name = %s and owner_kind = %s and owner_id = %s "
           "and not exists ({record})")


def _drop(table: str, timeout: float) -> None:
    rollup.drop_view(table, timeout)  # the hourly rollup a downsampled read may have made (rollup.py)
    get_questdb().exec(f"DROP TABLE IF EXISTS {quote(table)}", timeout=timeout)


def drop_released(regs: list[own.Registration], budget: Budget) -> tuple[list[str], dict[str, str]]:
    """DROP the tables `ownership.release_registrations` returned. Returns (dropped, {table: why not});
    the tables not dropped are registered back to their record for the sweeper."""
    dropped: list[str] = []
    left: dict[str, str] = {}
    for reg in regs:
        try:
            _drop(reg.table, budget.left(DROP_TIMEOUT, floor=1.0))
            dropped.append(reg.table)
        except Exception as exc:  # the records are gone already: report, never fail the request
            left[reg.table] = to_stage1_error(exc).message
            log.warning("could not drop questdb table %s (the sweeper will): %s", reg.table, left[reg.table])
    kept = [r for r in regs if r.table in left]
    if kept:
        try:
            with db.connection() as conn:
                for r in kept:
                    conn.execute(_KEEP, (r.table, r.owner.kind, r.owner.id, r.role))
        except Exception as exc:
            log.warning("tables %s left unregistered: %s", sorted(left), to_stage1_error(exc).message)
    return dropped, left


def drop_registered(reg: own.Registration, timeout: float = DROP_TIMEOUT) -> bool:
    """DROP an owned table, then forget its registration if the record is gone (a FAILED run keeps
    it). False when QuestDB did not drop it: the registration stays for the next sweep."""
    try:
        _drop(reg.table, timeout)
    except Exception as exc:
        log.warning("could not drop questdb table %s: %s", reg.table, to_stage1_error(exc).message)
        return False
    record = own.RECORD_EXISTS[reg.owner.kind].replace("%s", "stage1_questdb_tables.owner_id")
    with db.connection() as conn:
        conn.execute(_FORGET.format(record=record), (reg.table, reg.owner.kind, reg.owner.id))
    return True


def sweep_orphans(ages: dict[str, float]) -> int:
    """For the sweeper: drop the owned tables still registered to a record of each kind that is gone,
    registered more than `ages[kind]` seconds ago. Returns how many were dropped."""
    with db.connection() as conn:
        regs = [r for kind, age in ages.items() for r in own.orphans(conn, kind, age)]
    return sum(drop_registered(r) for r in regs)
