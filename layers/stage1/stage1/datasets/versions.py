"""Dataset versions: which content a dataset had, and which one a run or simulation saw.

A version is recorded when the dataset's content fingerprint (`stage1.timeseries.fingerprint`, one
per table, combined here) differs from its latest version's: after a dataset import (the imported
table is fingerprinted, the other one taken from the latest version) and at `POST /api/datasets`
with `record_questdb` (both tables). A change that leaves the fingerprint as it was records
nothing: re-importing the same file is idempotent (DEDUP) and so is its version.

QuestDB is always read first, outside any Postgres transaction; the version is then written in one
short transaction that locks the dataset row (concurrent imports of the two tables each take the
other table's fingerprint from the version written before them).
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import msgspec
from psycopg import Connection

from stage1.core import db
from stage1.core.budget import Budget
from stage1.core.errors import ServiceUnavailable
from stage1.core.paging import next_offset
from stage1.core.questdb import QuestDBError
from stage1.timeseries.fingerprint import ALGORITHM, Fingerprint, fingerprint
from stage1.timeseries.timestamps import micros_to_unix
from stage1_wire.dataset_versions import DatasetVersion, DatasetVersionList, SeenVersion, TableVersion

TABLES = ("ohlcv", "indicator")
DETAIL_VERSIONS = 50  # versions listed in a dataset's detail (all of them: GET .../versions)
IMPORT_FINGERPRINT_TIMEOUT = 300.0  # seconds of one table's fingerprint in the importer (10M rows: ~3 s)
_COLUMNS = (
    "version, created_at, kind, upload_id, job_id, fingerprint, ohlcv_rows, ohlcv_first_ts, ohlcv_last_ts, "
    "ohlcv_fingerprint, indicator_rows, indicator_first_ts, indicator_last_ts, indicator_fingerprint"
)


def measure(names: dict[str, str], *, timeout: float | None = None, budget: Budget | None = None,
            known: dict[str, Fingerprint] | None = None) -> dict[str, TableVersion]:
    """Fingerprints of the named tables (`{"ohlcv": table, "indicator": table}` or one of them);
    `budget`: a request's QuestDB budget (503 once spent); `known`: tables already fingerprinted."""
    known = known or {}
    return {which: _table(known[name] if name in known else fingerprint(name, timeout=timeout, budget=budget))
            for which, name in names.items()}


def _table(fp: Fingerprint) -> TableVersion:
    return TableVersion(rows=fp.rows, first_ts=micros_to_unix(fp.first_ts), last_ts=micros_to_unix(fp.last_ts),
                        fingerprint=fp.digest)


def combined(tables: dict[str, TableVersion]) -> str:
    text = "|".join([ALGORITHM, *(tables[w].fingerprint or "-" for w in TABLES)])
    return hashlib.sha256(text.encode()).hexdigest()


def _stored_table(row: dict[str, Any], which: str) -> TableVersion:
    return TableVersion(rows=row[f"{which}_rows"], first_ts=row[f"{which}_first_ts"],
                        last_ts=row[f"{which}_last_ts"], fingerprint=row[f"{which}_fingerprint"])


def _version(row: dict[str, Any]) -> DatasetVersion:
    return DatasetVersion(version=row["version"], created_at=row["created_at"], kind=row["kind"],
                          upload_id=row["upload_id"], job_id=row["job_id"], fingerprint=row["fingerprint"],
                          ohlcv=_stored_table(row, "ohlcv"), indicator=_stored_table(row, "indicator"))


def _latest(conn: Connection[Any], dataset_id: uuid.UUID | str, version: int) -> dict[str, Any] | None:
    return conn.execute(f"select {_COLUMNS} from stage1_dataset_versions where dataset_id = %s and version = %s",  # noqa: S608
                        (dataset_id, version)).fetchone()


# ---------------------------------------------------------------- writes
def record(conn: Connection[Any], dataset_id: uuid.UUID | str, kind: str, measured: dict[str, TableVersion], *,
           upload_id: str | None = None, job_id: str | None = None) -> tuple[int, bool]:
    """In the caller's (short) transaction: a new version if the content differs from the latest
    version's. Tables not in `measured` keep the latest version's values. (version now, created?)."""
    row = conn.execute("select version from stage1_datasets where dataset_id = %s for update", (dataset_id,)).fetchone()
    if row is None:
        return 0, False  # deleted meanwhile: nothing to version
    latest = _latest(conn, dataset_id, row["version"]) if row["version"] else None
    tables: dict[str, TableVersion] = {}
    for which in TABLES:
        if which in measured:
            tables[which] = measured[which]
        elif latest is not None:
            tables[which] = _stored_table(latest, which)
        else:
            return row["version"], False  # the caller measures both tables when there is no version yet
    digest = combined(tables)
    if latest is not None and latest["fingerprint"] == digest:
        return row["version"], False
    version = row["version"] + 1
    values = {f"{w}_{k}": getattr(tables[w], k) for w in TABLES for k in ("rows", "first_ts", "last_ts", "fingerprint")}
    conn.execute(
        "insert into stage1_dataset_versions (dataset_id, version, kind, upload_id, job_id, fingerprint, "
        "ohlcv_rows, ohlcv_first_ts, ohlcv_last_ts, ohlcv_fingerprint, indicator_rows, indicator_first_ts, "
        "indicator_last_ts, indicator_fingerprint) values (%(dataset_id)s, %(version)s, %(kind)s, %(upload_id)s, "
        "%(job_id)s, %(fingerprint)s, %(ohlcv_rows)s, %(ohlcv_first_ts)s, %(ohlcv_last_ts)s, %(ohlcv_fingerprint)s, "
        "%(indicator_rows)s, %(indicator_first_ts)s, %(indicator_last_ts)s, %(indicator_fingerprint)s)",
        {"dataset_id": dataset_id, "version": version, "kind": kind, "upload_id": upload_id, "job_id": job_id,
         "fingerprint": digest, **values},
    )
    conn.execute("update stage1_datasets set version = %s where dataset_id = %s", (version, dataset_id))
    return version, True


def after_import(dataset_id: str, kind: str, target: str, *, upload_id: str | None, job_id: str,
                 known: Fingerprint | None = None) -> dict[str, Any]:
    """The importer's hook once the rows are in `target` (WAL applied): fingerprint the imported table
    (and, when the dataset has no version yet, the other one) in QuestDB, then one short transaction.
    `known`: the imported table's fingerprint as the importer computed it (`stage1.imports.rowhash`).
    The keys it adds to the job's `result.dataset`: `version`, `version_created`."""
    with db.connection() as conn:
        row = conn.execute("select version, ohlcv_measurement, indicator_measurement from stage1_datasets "
                           "where dataset_id = %s", (dataset_id,)).fetchone()
    if row is None:
        return {}
    names = {w: row[f"{w}_measurement"] for w in TABLES}
    which = [w for w in TABLES if names[w] == target]
    if not which:
        return {}  # the import filled a table the dataset does not name (any more)
    wanted = names if not row["version"] else {which[0]: target}
    try:
        measured = measure(wanted, timeout=IMPORT_FINGERPRINT_TIMEOUT, known={target: known} if known else None)
    except QuestDBError as exc:
        # Our own validated read-only SQL refused: QuestDB's trouble, not the file's. The worker
        # releases the job with the outage backoff; the retry re-imports (idempotent) and measures again.
        raise ServiceUnavailable("questdb", f"fingerprint failed: {exc.questdb_message[:300]}") from exc
    with db.connection() as conn, conn.transaction():
        version, created = record(conn, dataset_id, kind, measured, upload_id=upload_id, job_id=job_id)
    return {"version": version, "version_created": created}


# ---------------------------------------------------------------- reads
def list_versions(conn: Connection[Any], dataset_id: uuid.UUID, *, limit: int,
                  offset: int) -> tuple[list[DatasetVersion], int]:
    total = conn.execute("select count(*) as n from stage1_dataset_versions where dataset_id = %s",
                         (dataset_id,)).fetchone()
    rows = conn.execute(
        f"select {_COLUMNS} from stage1_dataset_versions where dataset_id = %s "  # noqa: S608 - constants
        "order by version desc limit %s offset %s", (dataset_id, limit, offset)).fetchall()
    return [_version(r) for r in rows], total["n"] if total else 0


def page(dataset_id: uuid.UUID, version: int, *, limit: int, offset: int) -> DatasetVersionList:
    with db.connection() as conn:
        versions, total = list_versions(conn, dataset_id, limit=limit, offset=offset)
    return DatasetVersionList(dataset_id=dataset_id, version=version, versions=versions, total=total, limit=limit,
                              offset=offset, next_offset=next_offset(offset, len(versions), total))


def seen(conn: Connection[Any], dataset_id: uuid.UUID) -> dict[str, Any] | None:
    """What a run or simulation stored now records of its dataset (the `dataset_version` jsonb): the
    latest stored version, never recomputed on the request path; version 0 (no fingerprints) when
    the dataset has none yet. Call in the transaction that stores the record."""
    row = conn.execute("select version, ohlcv_rows, ohlcv_first_ts, ohlcv_last_ts, indicator_rows, "
                       "indicator_first_ts, indicator_last_ts from stage1_datasets where dataset_id = %s",
                       (dataset_id,)).fetchone()
    if row is None:
        return None
    latest = _latest(conn, dataset_id, row["version"]) if row["version"] else None
    if latest is not None:
        value = SeenVersion(version=latest["version"], fingerprint=latest["fingerprint"],
                            created_at=latest["created_at"], ohlcv=_stored_table(latest, "ohlcv"),
                            indicator=_stored_table(latest, "indicator"))
    else:
        value = SeenVersion(version=0, fingerprint=None, created_at=None,
                            ohlcv=_stored_table({**row, "ohlcv_fingerprint": None}, "ohlcv"),
                            indicator=_stored_table({**row, "indicator_fingerprint": None}, "indicator"))
    return msgspec.to_builtins(value)


# Columns a run's / simulation's detail query adds (`{record}`: its alias; `d`: its dataset, joined):
# what it saw and what its dataset is now.
NOW_COLUMNS = (
    ", {record}.dataset_version, d.version as dataset_version_now, (select v.fingerprint from "
    "stage1_dataset_versions v where v.dataset_id = d.dataset_id and v.version = d.version) as dataset_fingerprint_now"
)
NOW_KEYS = ("dataset_version", "dataset_version_now", "dataset_fingerprint_now")


def shown_fields(row: dict[str, Any]) -> dict[str, Any]:
    """A record's `dataset_version` and `dataset_changed` from a row with `NOW_COLUMNS`: null/null when
    it was stored before versions existed (0016); changed when the dataset's version (or its
    fingerprint) is not the one it saw."""
    stored = row["dataset_version"]
    if stored is None:
        return {"dataset_version": None, "dataset_changed": None}
    seen_then = msgspec.convert(stored, SeenVersion)
    digest = row["dataset_fingerprint_now"]
    changed = row["dataset_version_now"] != seen_then.version or (
        digest is not None and seen_then.fingerprint is not None and digest != seen_then.fingerprint)
    return {"dataset_version": seen_then, "dataset_changed": changed}
