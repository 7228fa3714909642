"""Walk-forward runs: `walkforward_runs` + `walkforward_folds` in Postgres, predictions in a QuestDB
table (PREDICTIONS kind: WAL, DEDUP UPSERT KEYS(timestamp, fold_number)) registered to the run in
`stage1_questdb_tables` (`stage1.timeseries.ownership`).

Creating a run with inline predictions is `stage1.runs.create` (a short transaction, the QuestDB
write with no Postgres connection held, a second short transaction). No transaction here waits on
QuestDB either: `settle` and `delete_run` read or drop in QuestDB outside their transactions, and
`sweep_abandoned` fails runs a killed function left PENDING (docs/resources.md).
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any, Literal

from psycopg import Connection, sql

from stage1.core import db
from stage1.core.budget import Budget
from stage1.core.csvtext import CsvBody, csv_lines
from stage1.core.db import jsonb
from stage1.core.errors import BadRequest, Conflict, NotFound, ServiceUnavailable, Stage1Error, to_stage1_error
from stage1.core.filters import Column, Fields
from stage1.core.logging import get_logger, log_fields
from stage1.core.paging import like_pattern, next_offset, page_limit, sort_orders
from stage1.core.ranking import prepare
from stage1.core.refs import parse_uuid
from stage1.core.settings import get_settings
from stage1.core.times import utc
from stage1.core.where import Where
from stage1.datasets import service as datasets
from stage1.datasets import versions
from stage1.datasets.lookup import filter_by
from stage1.runs import create, incremental
from stage1.runs import predictions as preds
from stage1.runs.schemas import (
    DownsampledPredictions,
    Fold,
    Predictions,
    RunCreated,
    RunDeleted,
    RunDetail,
    RunIn,
    RunLinks,
    RunList,
    RunSort,
    RunStatus,
    RunSummary,
)
from stage1.timeseries import cleanup, downsample, reads
from stage1.timeseries import ownership as own

log = get_logger("runs")

SORTS = sort_orders("r.", ("created_at", "started_at", "completed_at", "prediction_measurement", "status"),
                    nulls_last=frozenset({"started_at", "completed_at"}))
_SUMMARY = """
select r.run_id, r.dataset_id, d.dataset_slug, r.prediction_measurement, r.status, r.error, r.started_at,
       r.completed_at, r.created_at, r.updated_at, r.target_column, r.prediction_rows, r.job_id, r.upload_id,
       (select count(*) from walkforward_folds f where f.run_id = r.run_id) as fold_count
"""
_DETAIL_EXTRA = ", r.feature_columns, r.threshold_columns, r.walk_config, r.hyperparameters, r.summary_metrics" + \
    versions.NOW_COLUMNS.format(record="r")
_FROM = " from walkforward_runs r join stage1_datasets d on d.dataset_id = r.dataset_id"
# What `filter=` and `sort=` can name (stage1.core.filters; docs/resources.md, "Search and rank").
FIELDS = Fields(
    columns={
        "run_id": Column("r.run_id", "uuid"), "status": Column("r.status", "text"),
        "dataset_id": Column("r.dataset_id", "uuid"), "dataset_slug": Column("d.dataset_slug", "text"),
        "prediction_measurement": Column("r.prediction_measurement", "text"),
        "target_column": Column("r.target_column", "text"), "created_at": Column("r.created_at", "time"),
        "started_at": Column("r.started_at", "time", nullable=True),
        "completed_at": Column("r.completed_at", "time", nullable=True),
        "prediction_rows": Column("r.prediction_rows", "number"),
        "fold_count": Column("(select count(*) from walkforward_folds f where f.run_id = r.run_id)", "number"),
    },
    documents={"summary_metrics": "r.summary_metrics", "hyperparameters": "r.hyperparameters",
               "walk_config": "r.walk_config"},
    folds="(select {agg}({value}) from walkforward_folds f where f.run_id = r.run_id)",
    id_column="r.run_id",
)


# ----------------------------------------------------------------------------------------- reads
def _summary(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": row["run_id"], "dataset_id": row["dataset_id"], "dataset_slug": row["dataset_slug"],
        "prediction_measurement": row["prediction_measurement"], "status": row["status"], "error": row["error"],
        "started_at": utc(row["started_at"]), "completed_at": utc(row["completed_at"]),
        "created_at": utc(row["created_at"]), "updated_at": utc(row["updated_at"]),
        "fold_count": row["fold_count"], "target_column": row["target_column"],
        "prediction_rows": row["prediction_rows"], "job_id": row["job_id"], "upload_id": row["upload_id"],
    }


def list_runs(*, dataset: str | None, status: RunStatus | None, measurement: str | None, search: str | None,
              limit: int, offset: int, sort: RunSort | str, dataset_must_exist: bool = False,
              filter_text: str | None = None, cursor: str | None = None) -> RunList:
    """Runs, filtered and paged (by offset, or by `cursor`: stable under any sort). With
    `dataset_must_exist` an unknown dataset is a 404."""
    where = Where(limit=limit + 1, offset=offset)  # one more row tells whether a next page exists
    if dataset is not None:
        filter_by(where, dataset, id_column="r.dataset_id", slug_column="d.dataset_slug")
    where.eq("r.status", "status", status).eq("r.prediction_measurement", "measurement", measurement)
    if search:
        where.add("(r.prediction_measurement ilike %(pattern)s or d.dataset_slug ilike %(pattern)s "
                  "or r.target_column ilike %(pattern)s or r.run_id::text ilike %(pattern)s)",
                  pattern=like_pattern(search))
    found = prepare(FIELDS, where, filter_text=filter_text, sort=sort, cursor=cursor, legacy=SORTS, offset=offset)
    params = where.params
    with db.connection() as conn:
        if dataset_must_exist and dataset is not None:
            datasets.find_row(conn, dataset)
        total = conn.execute(sql.SQL("select count(*) as n" + _FROM + found.count_clause),  # noqa: S608
                             params).fetchone()
        page_sql = sql.SQL(_SUMMARY + found.rank.select() + _FROM + found.page_clause  # noqa: S608 - constant parts
                           + " order by " + found.rank.order_by + " limit %(limit)s offset %(offset)s")
        rows = conn.execute(page_sql, params).fetchall()
    if _settle_all(rows[:limit]):  # runs waiting for an upload import: show them as they are now
        with db.connection() as conn:
            rows = conn.execute(page_sql, params).fetchall()
    return RunList(runs=[RunSummary(**_summary(r)) for r in rows[:limit]], total=total["n"] if total else 0,
                   limit=limit, offset=offset, next_cursor=found.next_cursor(rows, limit, "run_id"))


def _run_row(conn: Connection[Any], run_id: uuid.UUID) -> dict[str, Any]:
    row = conn.execute(sql.SQL(_SUMMARY + _DETAIL_EXTRA + _FROM + " where r.run_id = %s"), (run_id,)).fetchone()
    if row is None:
        raise NotFound("run not found", {"run_id": str(run_id)})
    return row


def get_run(run_ref: str) -> RunDetail:
    run_id = parse_uuid(run_ref, "run_id")
    settle(run_id)
    with db.connection() as conn:
        row = _run_row(conn, run_id)
        folds = conn.execute(
            "select fold_number, train_start, train_end, test_start, test_end, samples_train, samples_test, "
            "thresholds, metrics from walkforward_folds where run_id = %s order by fold_number", (run_id,),
        ).fetchall()
    base = f"/api/runs/{run_id}"
    return RunDetail(
        **_summary(row), feature_columns=row["feature_columns"], threshold_columns=row["threshold_columns"],
        walk_config=row["walk_config"], hyperparameters=row["hyperparameters"],
        summary_metrics=row["summary_metrics"], folds=[Fold(**f) for f in folds],
        links=RunLinks(self=base, dataset=f"/api/datasets/{row['dataset_id']}", predictions=f"{base}/predictions",
                       simulations=f"/api/simulations?run_id={run_id}"),
        **versions.shown_fields(row),
    )


def read_predictions(run_ref: str, *, fmt: Literal["json", "csv"], fold: int | None, from_s: int | None,
                     to_s: int | None, limit: int | None, offset: int,
                     unit: reads.TimestampUnit, max_points: int | None = None) -> Predictions | CsvBody:
    """Predictions of a run in the documented column order. The one place they are read (a later
    size-threshold → export-job path hooks in here)."""
    if from_s is not None and to_s is not None and from_s > to_s:
        raise BadRequest("from is after to", {"from": from_s, "to": to_s})
    run_id = parse_uuid(run_ref, "run_id")
    settle(run_id)
    with db.connection() as conn:
        row = conn.execute("select prediction_measurement, threshold_columns, status, error, job_id "
                           "from walkforward_runs where run_id = %s", (run_id,)).fetchone()
    if row is None:
        raise NotFound("run not found", {"run_id": str(run_id)})
    if row["status"] != "COMPLETED":  # never serve the rows of a run that is not whole
        job = str(row["job_id"]) if row["job_id"] else None
        raise Conflict(f"the run is {row['status']}: its predictions are not available",
                       {"status": row["status"], "error": row["error"], "job_id": job,
                        "poll_url": f"/api/jobs/{job}" if job else None})
    table, thresholds = row["prediction_measurement"], list(row["threshold_columns"])
    wanted = [*preds.BASE_COLUMNS, *thresholds]
    header = ["timestamp", *wanted]
    filename = f"{table}.csv"
    try:
        available = reads.table_columns(table)
    except NotFound:  # a run registered without predictions: an empty result, not an error
        if fmt == "csv":
            return CsvBody(filename, csv_lines(header, iter(())))
        return Predictions(run_id=run_id, prediction_measurement=table, columns=header, predictions=[], total=0,
                           limit=limit or 1000, offset=offset, next_offset=None)
    ts = reads.designated(available, table)
    present = {c.name.lower(): c.name for c in available}
    missing = {c for c in wanted if c not in present}
    if fold is not None and "fold_number" in missing:
        return _empty(fmt, run_id, table, header, filename, limit, offset)
    query = reads.RowQuery(
        table=table, ts_column=ts.name, ts_type=ts.type, columns=[present.get(c, c) for c in wanted],
        from_s=from_s, to_s=to_s, filters={"fold_number": fold} if fold is not None else {},
        order=[] if "fold_number" in missing else ["fold_number"], unit=unit, missing=missing,
    )
    if max_points is not None:  # chart resolution: every column its bucket's last value (timeseries.downsample)
        points = downsample.read(query, {}, max_points, fmt=fmt, limit=limit, offset=offset, filename=filename)
        if isinstance(points, CsvBody):
            return points
        return DownsampledPredictions(
            run_id=run_id, prediction_measurement=table, columns=header, predictions=points.rows, total=points.total,
            limit=points.limit, offset=offset, next_offset=next_offset(offset, len(points.rows), points.total),
            bucket_seconds=points.bucket_seconds, max_points=max_points)
    if fmt == "csv":
        return CsvBody(filename, reads.open_csv(query, limit, offset))
    size = page_limit(limit or 1000, len(header))
    data, total = reads.read_page(query, size, offset)
    return Predictions(run_id=run_id, prediction_measurement=table, columns=header, predictions=data, total=total,
                       limit=size, offset=offset, next_offset=next_offset(offset, len(data), total))


def _empty(fmt: str, run_id: uuid.UUID, table: str, header: list[str], filename: str, limit: int | None,
           offset: int) -> Predictions | CsvBody:
    if fmt == "csv":
        return CsvBody(filename, csv_lines(header, iter(())))
    return Predictions(run_id=run_id, prediction_measurement=table, columns=header, predictions=[], total=0,
                       limit=limit or 1000, offset=offset, next_offset=None)


# ---------------------------------------------------------------------------------------- create
def create_run(body: RunIn) -> RunCreated:
    """Store a run, its folds and (optionally) its inline predictions (`stage1.runs.create`); with
    `status` RUNNING an incremental run (`stage1.runs.incremental`)."""
    if body.status == "RUNNING":
        return incremental.create_running(body)
    if body.upload_id is not None:
        create.check_folds(body)
        create.parse_inline(body)  # one way of giving predictions only
        return _create_from_upload(body)
    return create.create_run(body)


# ------------------------------------------------------------------------- predictions from an upload
def _upload_of(conn: Connection[Any], body: RunIn, dataset: dict[str, Any]) -> dict[str, Any]:
    """The upload a run's predictions come from (kind predictions, same dataset if it names one);
    an unknown upload is a 409 like an unknown dataset, and so is one whose import already failed."""
    row = conn.execute(
        "select u.upload_id, u.kind, u.measurement, u.dataset_id, u.job_id, j.status as job_status, j.error "
        "from stage1_uploads u join stage1_jobs j on j.job_id = u.job_id where u.upload_id = %s",
        (body.upload_id,),
    ).fetchone()
    if row is None:
        raise Conflict("unknown upload_id", {"upload_id": str(body.upload_id)})
    if row["kind"] != "predictions":
        raise BadRequest("the upload is not of kind predictions", {"upload_id": str(body.upload_id),
                                                                   "kind": row["kind"]})
    if body.prediction_measurement and body.prediction_measurement != row["measurement"]:
        raise BadRequest("prediction_measurement differs from the upload's measurement",
                         {"prediction_measurement": body.prediction_measurement, "upload": row["measurement"]})
    if row["dataset_id"] is not None and row["dataset_id"] != dataset["dataset_id"]:
        raise Conflict("the upload belongs to another dataset", {"upload_id": str(body.upload_id)})
    if row["job_status"] in ("FAILED", "CANCELLED"):
        raise Conflict(f"the upload's import is {row['job_status']}",
                       {"job_id": str(row["job_id"]), "job_error": row["error"]})
    return row


def _create_from_upload(body: RunIn) -> RunCreated:
    """The run and its folds now, status RUNNING and linked to the upload's import job; the run
    becomes COMPLETED (or FAILED, with the job's error) when that job ends (`settle`)."""
    with db.connection() as conn, conn.transaction():
        dataset = create.dataset_of(conn, body)
        upload = _upload_of(conn, body, dataset)

        def upload_owns(conn: Connection[Any], name: str, run_id: uuid.UUID) -> None:
            # The table stays the upload's while its import runs (the importer writes as the upload);
            # `settle` hands it to the run once the import COMPLETED. Anyone else's: 409 naming it.
            own.claim(conn, name, own.Owner("upload", upload["upload_id"]), "predictions", exists=False)

        run_id, table = create.insert_run(conn, body, dataset, list(body.threshold_columns or []),
                                          [upload["measurement"]], upload=upload, claim=upload_owns)
        create.insert_folds(conn, run_id, body)
    settle(run_id)  # the import may be done already
    with db.connection() as conn:
        row = conn.execute("select status, prediction_rows, threshold_columns from walkforward_runs "
                           "where run_id = %s", (run_id,)).fetchone()
        job = conn.execute("select result from stage1_jobs where job_id = %s", (upload["job_id"],)).fetchone()
    written = int(((job or {}).get("result") or {}).get("rows_written") or 0) if row["status"] == "COMPLETED" else 0
    job_id = str(upload["job_id"])
    log_fields(log, 20, "run stored from an upload", run_id=str(run_id), table=table, job_id=job_id,
               status=row["status"])
    return RunCreated(run_id=run_id, dataset_id=dataset["dataset_id"], prediction_measurement=table,
                      questdb_rows_written=written, prediction_rows=row["prediction_rows"],
                      threshold_columns=list(row["threshold_columns"]), status=row["status"], job_id=job_id,
                      poll_url=f"/api/jobs/{job_id}")


def settle(run_id: uuid.UUID) -> None:
    """Move a RUNNING run whose upload import has ended to COMPLETED (counts read from QuestDB) or
    FAILED (the job's error). Idempotent; a QuestDB that is down leaves the run RUNNING for the
    next read to settle. QuestDB is read between two statements, never inside a transaction."""
    with db.connection() as conn:
        row = conn.execute(
            "select r.status, r.prediction_measurement, r.threshold_columns, r.upload_id, j.status as job_status, "
            "j.error, "
            "j.completed_at as job_completed_at from walkforward_runs r join stage1_jobs j on j.job_id = r.job_id "
            "where r.run_id = %s", (run_id,),
        ).fetchone()
    if row is None or row["status"] != "RUNNING" or row["job_status"] in ("PENDING", "RUNNING"):
        return
    if row["job_status"] != "COMPLETED":
        with db.connection() as conn:
            conn.execute(
                "update walkforward_runs set status = 'FAILED', error = %s, completed_at = now(), updated_at = now() "
                "where run_id = %s and status = 'RUNNING'",
                (f"predictions import {row['job_status'].lower()}: {row['error'] or 'no reason given'}", run_id),
            )
        return
    declared = list(row["threshold_columns"]) or None
    budget = Budget(get_settings().questdb.questdb_request_budget_seconds)
    try:
        rows, thresholds = _counted(row["prediction_measurement"], declared, budget)
    except (ServiceUnavailable, OSError) as exc:
        log.warning("run %s not settled yet: %s", run_id, exc)
        return
    table = row["prediction_measurement"]
    with db.connection() as conn, conn.transaction():  # only a run still RUNNING changes
        done = conn.execute(
            "update walkforward_runs set status = 'COMPLETED', prediction_rows = %s, threshold_columns = %s, "
            "completed_at = coalesce(completed_at, %s, now()), updated_at = now() "
            "where run_id = %s and status = 'RUNNING' returning run_id",
            (rows, jsonb(thresholds), row["job_completed_at"], run_id),
        ).fetchone()
        if done is not None and row["upload_id"] is not None:  # the imported table is now the run's
            try:
                with conn.transaction():
                    own.transfer(conn, table, own.Owner("upload", row["upload_id"]), own.Owner("run", run_id),
                                 "predictions")
            except Conflict as exc:  # registered to a third record meanwhile: the run only names it
                log.warning("run %s: %s", run_id, exc.message)


def _counted(table: str, declared: list[str] | None, budget: Budget) -> tuple[int, list[str]]:
    if not reads.table_states([table], timeout=budget.left(create.DDL_TIMEOUT), tolerant=False)[table].exists:
        return 0, list(declared or [])
    return create.existing_table(table, declared, budget)


def _settle_all(rows: list[dict[str, Any]]) -> bool:
    running = [r["run_id"] for r in rows if r["status"] == "RUNNING" and r.get("job_id")]
    for run_id in running:
        settle(run_id)
    return bool(running)


# ---------------------------------------------------------------------------------------- delete
def delete_run(run_ref: str) -> RunDeleted:
    """Postgres rows first (simulations of the run go with it), then the predictions table, best
    effort: a failure there leaves a table nothing references, reported in `questdb_error`."""
    run_id = parse_uuid(run_ref, "run_id")
    with db.connection() as conn, conn.transaction():
        sims = conn.execute("select count(*) as n from simulation_runs where run_id = %s", (run_id,)).fetchone()
        row = conn.execute("delete from walkforward_runs where run_id = %s "
                           "returning prediction_measurement, job_id, upload_id", (run_id,)).fetchone()
        if row is None:
            raise NotFound("run not found", {"run_id": str(run_id)})
        owned = own.release_registrations(conn, own.Owner("run", run_id))  # a table it only registered stays
        if row["upload_id"] is not None:  # still importing (or failed): the upload's table goes with its run
            owned += own.release_registrations(conn, own.Owner("upload", row["upload_id"]),
                                               [row["prediction_measurement"]])
    if row["job_id"] is not None:  # an upload still importing into the table: stop it first
        from stage1.jobs import service as jobs

        with contextlib.suppress(Stage1Error):
            jobs.cancel(str(row["job_id"]))
    table = row["prediction_measurement"]
    # After the commit, never inside the transaction.
    dropped, left = cleanup.drop_released(owned, Budget(get_settings().questdb.questdb_request_budget_seconds))
    return RunDeleted(run_id=run_id, deleted=True, prediction_measurement=table,
                      simulations_deleted=sims["n"] if sims else 0, questdb_table_dropped=table in dropped,
                      questdb_error=left.get(table))


# ---------------------------------------------------------------------------------------- sweeper
def sweep_abandoned() -> int:
    """For the sweeper: incremental runs idle past their timeout, and runs PENDING longer than the
    request budget + grace (their function was killed mid-write), become FAILED and their owned
    tables are dropped; tables still registered to a run or dataset that no longer exists (a drop
    that failed) are dropped. Returns the number of runs failed. Errors are logged, never raised
    (the sweep goes on)."""
    try:  # incremental runs no fold reached for run_incremental_timeout_seconds
        idle = incremental.sweep_idle()
    except Exception as exc:
        log_fields(log, 40, "idle run sweep failed", error=to_stage1_error(exc).message)
        idle = 0
    settings = get_settings()
    age = settings.questdb.questdb_request_budget_seconds + settings.jobs.run_abandon_grace_seconds
    try:
        with db.connection() as conn, conn.transaction():
            failed = conn.execute(
                "update walkforward_runs set status = 'FAILED', completed_at = now(), updated_at = now(), "
                "error = 'abandoned: the request writing its predictions did not finish' "
                "where status = 'PENDING' and job_id is null and created_at < now() - make_interval(secs => %s) "
                "returning run_id, prediction_measurement", (age,)).fetchall()
            regs = [own.owner_of(conn, r["prediction_measurement"]) for r in failed]
        for run, reg in zip(failed, regs, strict=True):
            if reg is not None and reg.owned and reg.owner == own.Owner("run", run["run_id"]):
                cleanup.drop_registered(reg)
        orphans = cleanup.sweep_orphans({"run": age, "dataset": 0})
    except Exception as exc:
        log_fields(log, 40, "run sweep failed", error=to_stage1_error(exc).message)
        return idle
    if failed or orphans:
        log_fields(log, 20, "abandoned runs swept", failed=len(failed), orphan_tables_dropped=orphans)
    return len(failed) + idle
