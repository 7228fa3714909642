"""Walk-forward runs: `walkforward_runs` + `walkforward_folds` in Postgres, predictions in a QuestDB
table (PREDICTIONS kind: WAL, DEDUP UPSERT KEYS(timestamp, fold_number)).

No half-written records (`create_run`): the run row (status PENDING) and its folds are inserted
in a Postgres transaction that stays open while the predictions are written to QuestDB, applied
and counted; it commits (status COMPLETED) only after that. Any failure rolls it back, so no run
becomes visible, and the QuestDB table this request created is dropped (best effort). What a
crash in the middle can leave: at most a QuestDB table that no run references (docs/resources.md).
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import psycopg
from psycopg import Connection, sql

from stage1.core import db
from stage1.core.errors import BadRequest, Conflict, NotFound, ServiceUnavailable, Stage1Error, to_stage1_error
from stage1.core.logging import get_logger, log_fields
from stage1.core.paging import like_pattern
from stage1.core.questdb import IDENT_MAX, get_questdb, quote
from stage1.datasets import service as datasets
from stage1.records import CsvBody, client_time, csv_lines, jsonb, next_offset, page_limit, parse_ref, parse_uuid, utc
from stage1.runs import predictions as preds
from stage1.runs.schemas import (
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
from stage1.timeseries import reads
from stage1.timeseries.kinds import Kind, create_table_sql
from stage1.timeseries.wal import wait_applied

log = get_logger("runs")

# Budgets of the QuestDB calls inside POST /api/runs (the whole request must fit API Gateway's ~30 s).
DDL_TIMEOUT = 5.0
ILP_TIMEOUT = 12.0
WAL_TIMEOUT = 10.0
DROP_TIMEOUT = 3.0
NAME_CANDIDATES = 20

SORTS: dict[str, str] = {
    "created_at": "r.created_at asc", "-created_at": "r.created_at desc",
    "started_at": "r.started_at asc nulls last", "-started_at": "r.started_at desc nulls last",
    "completed_at": "r.completed_at asc nulls last", "-completed_at": "r.completed_at desc nulls last",
    "prediction_measurement": "r.prediction_measurement asc",
    "-prediction_measurement": "r.prediction_measurement desc",
    "status": "r.status asc", "-status": "r.status desc",
}
_SUMMARY = """
select r.run_id, r.dataset_id, d.dataset_slug, r.prediction_measurement, r.status, r.error, r.started_at,
       r.completed_at, r.created_at, r.updated_at, r.target_column, r.prediction_rows, r.job_id, r.upload_id,
       (select count(*) from walkforward_folds f where f.run_id = r.run_id) as fold_count
"""
_DETAIL_EXTRA = ", r.feature_columns, r.threshold_columns, r.walk_config, r.hyperparameters, r.summary_metrics"
_FROM = " from walkforward_runs r join stage1_datasets d on d.dataset_id = r.dataset_id"


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
              limit: int, offset: int, sort: RunSort, dataset_must_exist: bool = False) -> RunList:
    """Runs, filtered and paged. With `dataset_must_exist` an unknown dataset is a 404."""
    where: list[str] = []
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if dataset is not None:
        kind, value = parse_ref(dataset)
        where.append("r.dataset_id = %(dataset)s" if kind == "id" else "d.dataset_slug = %(dataset)s")
        params["dataset"] = value
    if status is not None:
        where.append("r.status = %(status)s")
        params["status"] = status
    if measurement is not None:
        where.append("r.prediction_measurement = %(measurement)s")
        params["measurement"] = measurement
    if search:
        where.append("(r.prediction_measurement ilike %(pattern)s or d.dataset_slug ilike %(pattern)s "
                     "or r.target_column ilike %(pattern)s or r.run_id::text ilike %(pattern)s)")
        params["pattern"] = like_pattern(search)
    clause = " where " + " and ".join(where) if where else ""
    with db.connection() as conn:
        if dataset_must_exist and dataset is not None:
            datasets.find_row(conn, dataset)
        total = conn.execute(sql.SQL("select count(*) as n" + _FROM + clause), params).fetchone()  # noqa: S608
        page_sql = sql.SQL(_SUMMARY + _FROM + clause + " order by " + SORTS[sort]  # noqa: S608 - constant parts
                           + ", r.run_id limit %(limit)s offset %(offset)s")
        rows = conn.execute(page_sql, params).fetchall()
    if _settle_all(rows):  # runs waiting for an upload import: show them as they are now
        with db.connection() as conn:
            rows = conn.execute(page_sql, params).fetchall()
    return RunList(runs=[RunSummary(**_summary(r)) for r in rows], total=total["n"] if total else 0,
                   limit=limit, offset=offset)


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
    )


def read_predictions(run_ref: str, *, fmt: Literal["json", "csv"], fold: int | None, from_s: int | None,
                     to_s: int | None, limit: int | None, offset: int,
                     unit: reads.TimestampUnit) -> Predictions | CsvBody:
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
def _parse_inline(body: RunIn) -> preds.PredictionBatch | None:
    given = [name for name in ("predictions", "predictions_csv", "upload_id") if getattr(body, name) is not None]
    if len(given) > 1:
        raise BadRequest("give predictions in one way only", {"fields": given})
    if body.predictions is not None:
        return preds.from_rows(body.predictions, body.threshold_columns)
    if body.predictions_csv is not None:
        return preds.from_csv(body.predictions_csv, body.threshold_columns)
    return None


def _candidates(slug: str, now: datetime) -> list[str]:
    """`<slug>_wf_<yyyymmddHHMMSS>`, then `_2`, `_3`...; the slug is shortened to fit 63 characters."""
    head = f"_wf_{now.strftime('%Y%m%d%H%M%S')}"
    base = slug[: IDENT_MAX - len(head) - 3] + head
    return [base] + [f"{base}_{i}" for i in range(2, NAME_CANDIDATES + 1)]


_INSERT_RUN = """
insert into walkforward_runs (run_id, dataset_id, prediction_measurement, status, target_column, feature_columns,
    threshold_columns, walk_config, hyperparameters, summary_metrics, started_at, upload_id, job_id)
values (coalesce(%(run_id)s, gen_random_uuid()), %(dataset_id)s, %(name)s, %(status)s, %(target_column)s,
    %(feature_columns)s, %(threshold_columns)s, %(walk_config)s, %(hyperparameters)s, %(summary_metrics)s,
    coalesce(%(started_at)s, now()), %(upload_id)s, %(job_id)s)
on conflict (prediction_measurement) do nothing
returning run_id
"""


def _insert_run(conn: Connection[Any], body: RunIn, dataset: dict[str, Any], thresholds: list[str],
                upload: dict[str, Any] | None = None) -> tuple[uuid.UUID, str]:
    params = {
        "status": "RUNNING" if upload else "PENDING", "upload_id": upload["upload_id"] if upload else None,
        "job_id": upload["job_id"] if upload else None,
        "run_id": body.run_id, "dataset_id": dataset["dataset_id"], "target_column": body.target_column,
        "feature_columns": jsonb(body.feature_columns), "threshold_columns": jsonb(thresholds),
        "walk_config": jsonb(body.walk_config), "hyperparameters": jsonb(body.hyperparameters),
        "summary_metrics": jsonb(body.summary_metrics), "started_at": client_time(body.started_at, "started_at"),
    }
    if body.run_id is not None and conn.execute("select 1 from walkforward_runs where run_id = %s",
                                                (body.run_id,)).fetchone():
        raise Conflict("run_id already exists", {"run_id": str(body.run_id)})
    if upload is not None:
        names = [upload["measurement"]]
    elif body.prediction_measurement is not None:
        names = [body.prediction_measurement]
    else:
        names = _free_names(conn, _candidates(dataset["dataset_slug"], datetime.now(UTC)))
    for name in names:
        try:
            with conn.transaction():  # a savepoint: a unique violation must not abort the outer transaction
                row = conn.execute(_INSERT_RUN, {**params, "name": name}).fetchone()
        except psycopg.errors.UniqueViolation:
            raise Conflict("run_id already exists", {"run_id": str(body.run_id)}) from None
        if row is not None:
            return row["run_id"], name
    if len(names) == 1:
        raise Conflict("prediction_measurement is already used by another run", {"prediction_measurement": names[0]})
    raise Conflict("no free prediction_measurement name; give one", {"tried": names[-1]})


def _free_names(conn: Connection[Any], candidates: list[str]) -> list[str]:
    """Candidates no run uses and no QuestDB table has (an orphan of a crashed attempt is skipped)."""
    used = {r["prediction_measurement"] for r in conn.execute(
        "select prediction_measurement from walkforward_runs where prediction_measurement = any(%s)",
        (candidates,)).fetchall()}
    states = reads.table_states(candidates, timeout=DDL_TIMEOUT, tolerant=False)
    return [c for c in candidates if c not in used and not states[c].exists]


def _check_folds(body: RunIn) -> None:
    numbers = [f.fold_number for f in body.folds]
    duplicates = sorted({n for n in numbers if numbers.count(n) > 1})
    if duplicates:
        raise BadRequest("duplicate fold_number", {"duplicate_folds": duplicates})


def _insert_folds(conn: Connection[Any], run_id: uuid.UUID, body: RunIn) -> None:
    if not body.folds:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "insert into walkforward_folds (run_id, fold_number, train_start, train_end, test_start, test_end, "
            "samples_train, samples_test, thresholds, metrics) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(run_id, f.fold_number, f.train_start, f.train_end, f.test_start, f.test_end, f.samples_train,
              f.samples_test, jsonb(f.thresholds), jsonb(f.metrics)) for f in body.folds],
        )


def _dataset_of(conn: Connection[Any], body: RunIn) -> dict[str, Any]:
    """The run's dataset, locked FOR SHARE (a concurrent delete waits for this transaction);
    an unknown dataset is a 409 (CONTRACT.md)."""
    if body.dataset_id is None and body.dataset_slug is None:
        raise BadRequest("dataset_id is required", {"missing": ["dataset_id"]})
    column, value = ("dataset_id", body.dataset_id) if body.dataset_id else ("dataset_slug", body.dataset_slug)
    row = conn.execute(
        f"select dataset_id, dataset_slug, granularity from stage1_datasets where {column} = %s for share",  # noqa: S608
        (value,),
    ).fetchone()
    if row is None:
        raise Conflict(f"unknown {column}", {column: str(value)})
    if body.dataset_id and body.dataset_slug and row["dataset_slug"] != body.dataset_slug:
        raise Conflict("dataset_id and dataset_slug name different datasets",
                       {"dataset_id": str(body.dataset_id), "dataset_slug": body.dataset_slug})
    return row


def _store_predictions(table: str, batch: preds.PredictionBatch, granularity: str) -> tuple[int, int]:
    """Create the table if needed, write, wait until applied, count. Returns (rows sent, rows in
    the table). On failure the table is dropped if this call created it, and the error raised."""
    qdb = get_questdb()
    created = not reads.table_states([table], timeout=DDL_TIMEOUT, tolerant=False)[table].exists
    try:
        qdb.exec(create_table_sql(Kind.PREDICTIONS, table, granularity), timeout=DDL_TIMEOUT)
        sent = preds.write(table, batch, timeout=ILP_TIMEOUT)
        wait_applied(table, timeout=WAL_TIMEOUT)
        count = qdb.exec(f"select count() as n from {quote(table)}", timeout=DDL_TIMEOUT).rows()[0]["n"]  # noqa: S608
        expected = batch.distinct_keys
        if count < expected or (created and count != expected):
            raise ServiceUnavailable("questdb", "row count after the write does not match",
                                     {"expected": expected, "found": count, "table": table})
        return sent, int(count)
    except BaseException:
        if created:
            _drop_quietly(table)
        raise


def _drop_quietly(table: str) -> None:
    try:
        get_questdb().exec(f"DROP TABLE IF EXISTS {quote(table)}", timeout=DROP_TIMEOUT)
    except Exception as exc:  # the run is rolled back: a leftover table is referenced by nothing
        log.warning("could not drop questdb table %s after a failed write: %s", table, to_stage1_error(exc).message)


def _existing_table(table: str, declared: list[str] | None) -> tuple[int, list[str]]:
    """Row count and threshold columns of a measurement the client wrote itself (registration)."""
    state = reads.table_states([table], timeout=DDL_TIMEOUT, tolerant=False)[table]
    if not state.exists:
        return 0, list(declared or [])
    wait_applied(table, timeout=WAL_TIMEOUT)
    state = reads.table_states([table], timeout=DDL_TIMEOUT, tolerant=False)[table]
    if declared is not None:
        return state.row_count or 0, list(declared)
    known = {*preds.TS_COLUMNS, *preds.BASE_COLUMNS}
    extras = [c.name.lower() for c in reads.table_columns(table) if not c.designated and c.name.lower() not in known]
    return state.row_count or 0, extras


def create_run(body: RunIn) -> RunCreated:
    """Store a run, its folds and (optionally) its inline predictions as one unit (module docstring)."""
    _check_folds(body)  # every 400 about the payload comes before anything is read or written
    batch = _parse_inline(body)
    if body.upload_id is not None:
        return _create_from_upload(body)
    thresholds = batch.extra_columns if batch is not None else list(body.threshold_columns or [])
    with db.connection() as conn, conn.transaction():
        dataset = _dataset_of(conn, body)
        run_id, table = _insert_run(conn, body, dataset, thresholds)
        _insert_folds(conn, run_id, body)
        if batch is not None:
            written, rows = _store_predictions(table, batch, dataset["granularity"])
        else:
            written = 0
            rows, thresholds = _existing_table(table, body.threshold_columns)
        conn.execute(
            "update walkforward_runs set status = 'COMPLETED', completed_at = coalesce(%s, now()), "
            "prediction_rows = %s, threshold_columns = %s, updated_at = now() where run_id = %s",
            (client_time(body.completed_at, "completed_at"), rows, jsonb(thresholds), run_id),
        )
    log_fields(log, 20, "run stored", run_id=str(run_id), table=table, rows_written=written)
    return RunCreated(run_id=run_id, dataset_id=dataset["dataset_id"], prediction_measurement=table,
                      questdb_rows_written=written, prediction_rows=rows, threshold_columns=thresholds,
                      status="COMPLETED")


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
        dataset = _dataset_of(conn, body)
        upload = _upload_of(conn, body, dataset)
        run_id, table = _insert_run(conn, body, dataset, list(body.threshold_columns or []), upload)
        _insert_folds(conn, run_id, body)
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
    next read to settle."""
    with db.connection() as conn, conn.transaction():
        row = conn.execute(
            "select r.status, r.prediction_measurement, r.threshold_columns, j.status as job_status, j.error, "
            "j.completed_at as job_completed_at from walkforward_runs r join stage1_jobs j on j.job_id = r.job_id "
            "where r.run_id = %s for update of r", (run_id,),
        ).fetchone()
        if row is None or row["status"] != "RUNNING" or row["job_status"] in ("PENDING", "RUNNING"):
            return
        if row["job_status"] != "COMPLETED":
            conn.execute(
                "update walkforward_runs set status = 'FAILED', error = %s, completed_at = now(), updated_at = now() "
                "where run_id = %s",
                (f"predictions import {row['job_status'].lower()}: {row['error'] or 'no reason given'}", run_id),
            )
            return
        declared = list(row["threshold_columns"]) or None
        try:
            rows, thresholds = _existing_table(row["prediction_measurement"], declared)
        except (ServiceUnavailable, OSError) as exc:
            log.warning("run %s not settled yet: %s", run_id, exc)
            return
        conn.execute(
            "update walkforward_runs set status = 'COMPLETED', prediction_rows = %s, threshold_columns = %s, "
            "completed_at = coalesce(completed_at, %s, now()), updated_at = now() where run_id = %s",
            (rows, jsonb(thresholds), row["job_completed_at"], run_id),
        )


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
        row = conn.execute("delete from walkforward_runs where run_id = %s returning prediction_measurement, job_id",
                           (run_id,)).fetchone()
        if row is None:
            raise NotFound("run not found", {"run_id": str(run_id)})
    if row["job_id"] is not None:  # an upload still importing into the table: stop it first
        from stage1.jobs import service as jobs

        with contextlib.suppress(Stage1Error):
            jobs.cancel(str(row["job_id"]))
    table = row["prediction_measurement"]
    dropped, left = datasets.drop_tables([table])
    return RunDeleted(run_id=run_id, deleted=True, prediction_measurement=table,
                      simulations_deleted=sims["n"] if sims else 0, questdb_table_dropped=bool(dropped),
                      questdb_error=left.get(table))
