"""Which QuestDB table an upload may fill (issue 11, hole 2; `stage1.timeseries.ownership`).

- An ohlcv/indicators upload of a dataset fills a table the dataset owns (its own ohlcv/indicator
  table is claimed for it if no record has it yet; any other name must be registered to it).
- A predictions upload gets a table of its own, registered to the upload (the run taking the upload
  takes the table, `ownership.transfer`): a table of another record is a 409 naming it (one of an
  upload whose import FAILED or was CANCELLED is taken over), and so is an existing table nobody
  registered (made outside the service).
- Other uploads without a dataset (trades, raw, bare ohlcv): a table of a dataset, run or job is a
  409 naming it; one of another upload is shared (appending imports); an unregistered one is
  registered to this upload (owned only if it did not exist yet).
"""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import Connection

from stage1.core import db
from stage1.core.errors import Conflict
from stage1.timeseries import ownership as own
from stage1.timeseries import reads

DATASET_KINDS = ("ohlcv", "indicators")


def check_table(kind: str, measurement: str, dataset_id: str | None) -> bool | None:
    """Before anything is created (S3 multipart included): the name is allowed (400) and the claim
    would succeed (409; a dry run, rolled back). Returns whether the table exists already (None:
    QuestDB did not answer, or a dataset's table)."""
    own.check_name(measurement)
    exists = None
    if dataset_id is None or kind not in DATASET_KINDS:
        exists = reads.table_states([measurement])[measurement].exists
    with db.connection() as conn, conn.transaction(force_rollback=True):
        claim_table(conn, str(uuid.uuid4()), kind, measurement, dataset_id, exists)
    return exists


def _ended(conn: Connection[Any], upload_id: uuid.UUID) -> bool:
    row = conn.execute("select j.status from stage1_uploads u join stage1_jobs j on j.job_id = u.job_id "
                       "where u.upload_id = %s", (upload_id,)).fetchone()
    return row is None or row["status"] in ("FAILED", "CANCELLED")


def claim_table(conn: Connection[Any], upload_id: str, kind: str, measurement: str,
                dataset_id: str | None, exists: bool | None) -> None:
    """Register (or check) the upload's table in the upload's transaction (rules above)."""
    dataset = None
    if dataset_id is not None and kind in DATASET_KINDS:
        dataset = conn.execute("select dataset_id, ohlcv_measurement, indicator_measurement from stage1_datasets "
                               "where dataset_id = %s", (dataset_id,)).fetchone()
    if dataset is not None:
        owner = own.Owner("dataset", dataset["dataset_id"])
        if measurement in (dataset["ohlcv_measurement"], dataset["indicator_measurement"]):
            own.claim(conn, measurement, owner, kind, exists=False)  # a dataset owns what it names
        else:
            own.require_writer(conn, measurement, owner)
        return
    me = own.Owner("upload", uuid.UUID(upload_id))
    reg = own.owner_of(conn, measurement)
    if reg is not None and reg.owner.kind == "upload" and reg.owner != me:
        if kind == "predictions" and _ended(conn, reg.owner.id):
            own.transfer(conn, measurement, reg.owner, me, kind)
            return
        if kind != "predictions" and reg.role != "predictions":
            return  # appending into another bare upload's table
    if reg is None and exists and kind == "predictions":
        raise Conflict(f"{measurement} exists in QuestDB and was not created by the service: a predictions "
                       "upload fills only a table of its own",
                       {"table": measurement, "owner_kind": None, "owner_id": None})
    own.claim(conn, measurement, me, kind, exists=exists is not False)
