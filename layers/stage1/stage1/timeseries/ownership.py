"""Who owns each QuestDB table (`stage1_questdb_tables`, migration 0011). Postgres only: every
function takes the caller's psycopg connection and runs inside the caller's transaction, so a
registration commits or rolls back together with the record that needs it.

Rules (docs/resources.md): a run, simulation or import writes only into a table registered to it
(or to its dataset, for a dataset import); any other registered table is a 409 naming the owner.
A table that existed before it was registered (`owned = false`, e.g. one the desktop wrote itself)
is never dropped by the service. `release` returns the tables to drop; the caller drops them in
QuestDB only AFTER its Postgres transaction has committed, never inside it.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from psycopg import Connection

from stage1.core.errors import BadRequest, Conflict
from stage1.core.questdb import STAGING_MARK, ident, is_staging

OWNER_KINDS = ("dataset", "run", "simulation", "upload", "job")
ROLES = ("ohlcv", "indicators", "predictions", "trades", "raw", "staging")

# Names a client may not give a table: QuestDB's own tables (telemetry*, sys*, _query_trace...),
# names that read as a table function (`files`, `tables`...) and names of underscores only.
_RESERVED = re.compile(r"^(_.*|telemetry.*|sys|sys_.*|files|tables|long_sequence|glob|information_schema)$")


@dataclass(frozen=True)
class Owner:
    kind: str
    id: uuid.UUID

    def __post_init__(self) -> None:
        if self.kind not in OWNER_KINDS:
            raise ValueError(f"unknown owner kind {self.kind!r}")
        if not isinstance(self.id, uuid.UUID):
            object.__setattr__(self, "id", uuid.UUID(str(self.id)))


@dataclass(frozen=True)
class Registration:
    table: str
    owner: Owner
    role: str
    owned: bool


def check_name(table: str, what: str = "measurement") -> str:
    """`ident()` plus the reserved names above and imports' staging names: a 400 naming the field.
    The one check of a table name a client gives (internal code, which names staging tables itself,
    uses `ident()`)."""
    ident(table, what)
    if _RESERVED.match(table):
        raise BadRequest(f"reserved {what}: the name belongs to QuestDB or starts with '_'",
                         {"field": what, "value": table})
    if is_staging(table):
        raise BadRequest(f"reserved {what}: a name ending in {STAGING_MARK} and 8 hex digits is an import's "
                         "staging table", {"field": what, "value": table})
    return table


def _registration(row: dict[str, Any]) -> Registration:
    return Registration(row["table_name"], Owner(row["owner_kind"], row["owner_id"]), row["role"], row["owned"])


def _conflict(reg: Registration) -> Conflict:
    return Conflict(f"{reg.table} belongs to {reg.owner.kind} {reg.owner.id}",
                    {"table": reg.table, "owner_kind": reg.owner.kind, "owner_id": str(reg.owner.id)})


_SELECT = "select table_name, owner_kind, owner_id, role, owned from stage1_questdb_tables where table_name = %s"


def owner_of(conn: Connection[Any], table: str) -> Registration | None:
    row = conn.execute(_SELECT, (table,)).fetchone()
    return _registration(row) if row else None


def owners_of(conn: Connection[Any], tables: list[str]) -> dict[str, Registration]:
    """The registrations of the names that have one."""
    rows = conn.execute("select table_name, owner_kind, owner_id, role, owned from stage1_questdb_tables "
                        "where table_name = any(%s)", (list(tables),)).fetchall()
    return {r["table_name"]: _registration(r) for r in rows}


def claim(conn: Connection[Any], table: str, owner: Owner, role: str, *, exists: bool) -> Registration:
    """Register `table` to `owner` (`owned = not exists`). Already registered to `owner`: that
    registration (idempotent). Registered to anyone else: 409 naming the owner. The insert takes the
    row lock, so of two concurrent claims exactly one wins and the other gets the 409."""
    ident(table)
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    if (named := _named_by(conn, table, owner)) is not None:
        raise _conflict(Registration(table, named, role, True))
    row = conn.execute(
        "insert into stage1_questdb_tables (table_name, owner_kind, owner_id, role, owned) "
        "values (%s, %s, %s, %s, %s) on conflict (table_name) do nothing "
        "returning table_name, owner_kind, owner_id, role, owned",
        (table, owner.kind, owner.id, role, not exists),
    ).fetchone()
    if row is not None:
        return _registration(row)
    reg = owner_of(conn, table)
    if reg is None:  # released between the insert and the select: try once more
        return claim(conn, table, owner, role, exists=exists)
    if reg.owner != owner:
        raise _conflict(reg)
    return reg


# Records whose columns name a table: what claims it when no registration does (a record written
# by code older than the registry).
_NAMED_BY = """
select 'dataset' as kind, dataset_id as id from stage1_datasets
where ohlcv_measurement = %(n)s or indicator_measurement = %(n)s
union all select 'run', run_id from walkforward_runs where prediction_measurement = %(n)s
"""


def _named_by(conn: Connection[Any], table: str, owner: Owner) -> Owner | None:
    """The first record other than `owner` that names an unregistered `table`."""
    if owner_of(conn, table) is not None:
        return None
    for row in conn.execute(_NAMED_BY, {"n": table}).fetchall():
        if (other := Owner(row["kind"], row["id"])) != owner:
            return other
    return None


RECORD_EXISTS = {
    "dataset": "select 1 from stage1_datasets where dataset_id = %s",
    "run": "select 1 from walkforward_runs where run_id = %s",
    "simulation": "select 1 from simulation_runs where simulation_id = %s",
    "upload": "select 1 from stage1_uploads where upload_id = %s",
    "job": "select 1 from stage1_jobs where job_id = %s",
}


def adopt_orphan(conn: Connection[Any], table: str, owner: Owner) -> bool:
    """A table still registered (owned) to a record of `owner`'s kind that no longer exists — what
    a failed attempt leaves when its drop did not happen — becomes `owner`'s. True if adopted."""
    reg = owner_of(conn, table)
    if reg is None or reg.owner.kind != owner.kind or reg.owner == owner or not reg.owned:
        return False
    if conn.execute(RECORD_EXISTS[reg.owner.kind], (reg.owner.id,)).fetchone() is not None:
        return False
    row = conn.execute("update stage1_questdb_tables set owner_id = %s where table_name = %s and owner_kind = %s "
                       "and owner_id = %s returning table_name", (owner.id, table, reg.owner.kind, reg.owner.id))
    return row.fetchone() is not None


def orphans(conn: Connection[Any], kind: str, older_than_seconds: float) -> list[Registration]:
    """Owned registrations of `kind` whose record no longer exists, registered that long ago."""
    record = RECORD_EXISTS[kind].replace("%s", "t.owner_id")  # constant SQL of a known kind
    query = ("select table_name, owner_kind, owner_id, role, owned from stage1_questdb_tables t "  # noqa: S608
             "where owner_kind = %s and owned and created_at < now() - make_interval(secs => %s) "
             f"and not exists ({record})")
    return [_registration(r) for r in conn.execute(query, (kind, older_than_seconds)).fetchall()]


def require_writer(conn: Connection[Any], table: str, owner: Owner) -> Registration:
    """The registration of `table` if it is `owner`'s; 409 otherwise (unregistered: owner_kind null)."""
    reg = owner_of(conn, table)
    if reg is None:
        raise Conflict(f"{table} is not registered to {owner.kind} {owner.id}",
                       {"table": table, "owner_kind": None, "owner_id": None})
    if reg.owner != owner:
        raise _conflict(reg)
    return reg


def transfer(conn: Connection[Any], table: str, from_owner: Owner, to_owner: Owner, role: str) -> Registration:
    """Hand `from_owner`'s table to `to_owner` (an upload's table becomes its run's), keeping
    `owned`. Already `to_owner`'s: idempotent. Unregistered (a record older than the registry):
    claimed as owned. Anyone else's: 409."""
    row = conn.execute(
        "update stage1_questdb_tables set owner_kind = %s, owner_id = %s, role = %s "
        "where table_name = %s and owner_kind = %s and owner_id = %s "
        "returning table_name, owner_kind, owner_id, role, owned",
        (to_owner.kind, to_owner.id, role, table, from_owner.kind, from_owner.id),
    ).fetchone()
    if row is not None:
        return _registration(row)
    return claim(conn, table, to_owner, role, exists=False)


# A table is still referenced while a record's column names it (the caller deletes its own record
# before calling `release`, in the same transaction).
_REFERENCED = """
select 1 from stage1_datasets where ohlcv_measurement = %(n)s or indicator_measurement = %(n)s
union all select 1 from walkforward_runs where prediction_measurement = %(n)s
limit 1
"""


def release_registrations(conn: Connection[Any], owner: Owner,
                          tables: list[str] | None = None) -> list[Registration]:
    """Delete `owner`'s registrations (only those of `tables`, if given) and return those it owned
    that no record references any more: the caller drops them AFTER its commit
    (`stage1.timeseries.cleanup.drop_released`)."""
    query = "delete from stage1_questdb_tables where owner_kind = %s and owner_id = %s"
    params: tuple[Any, ...] = (owner.kind, owner.id)
    if tables is not None:
        query += " and table_name = any(%s)"
        params += (list(tables),)
    rows = conn.execute(query + " returning table_name, owner_kind, owner_id, role, owned", params).fetchall()
    return sorted((_registration(r) for r in rows
                   if r["owned"] and conn.execute(_REFERENCED, {"n": r["table_name"]}).fetchone() is None),
                  key=lambda r: r.table)


def release(conn: Connection[Any], owner: Owner, tables: list[str] | None = None) -> list[str]:
    """`release_registrations`, as table names."""
    return [r.table for r in release_registrations(conn, owner, tables)]
