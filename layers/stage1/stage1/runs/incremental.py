"""Incremental runs: created RUNNING (`POST /api/runs` with `"status": "RUNNING"`), then folds sent
as the desktop's walk-forward produces them (`POST /api/runs/{id}/folds`), then `complete`.

Each folds request is atomic for its folds, with no Postgres transaction held across QuestDB
(the same steps as `stage1.runs.create`):
1. parse and check the body (400 before anything is read or written);
2. read the run (RUNNING, incremental) and its stored folds with no transaction: a fold already
   stored with the same data and the same predictions digest is `unchanged` (nothing written),
   with different data a 409;
3. QuestDB, no connection held, every call's timeout cut from one budget: create the run's table
   if needed, write the new folds' predictions, wait until applied, count;
4. one short transaction: the fold rows (now visible), `last_fold_at`, the prediction count.
A fold whose predictions were written but whose step 4 never ran stays invisible; re-sending it
upserts the same keys (DEDUP UPSERT KEYS(timestamp, fold_number)) and records it. `complete`
refuses a table holding rows of folds that were never recorded (409), so a completed run serves
exactly its folds. A run idle past `run_incremental_timeout_seconds` is failed by the sweeper
(`sweep_idle`).
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import psycopg
from psycopg import Connection

from stage1.core import db
from stage1.core.budget import Budget
from stage1.core.db import jsonb
from stage1.core.errors import BadRequest, Conflict, NotFound, ServiceUnavailable
from stage1.core.logging import get_logger, log_fields
from stage1.core.questdb import get_questdb, quote
from stage1.core.refs import parse_uuid
from stage1.core.settings import get_settings
from stage1.runs import create
from stage1.runs import predictions as preds
from stage1.runs.schemas import FoldIn, FoldsAdded, FoldsIn, RunComplete, RunCreated, RunDetail, RunIn
from stage1.timeseries import reads
from stage1.timeseries.client_times import client_time
from stage1.timeseries.kinds import Kind, create_table_sql
from stage1.timeseries.wal import wait_applied

log = get_logger("runs.incremental")

_FOLD_FIELDS = ("train_start", "train_end", "test_start", "test_end", "samples_train", "samples_test",
                "thresholds", "metrics")


# ---------------------------------------------------------------------------------------- create
def create_running(body: RunIn) -> RunCreated:
    """The run RUNNING, its table name claimed (owned: created at the first fold), any folds given
    without predictions stored now. One short transaction; QuestDB is only asked which names are free."""
    if body.predictions is not None or body.predictions_csv is not None or body.upload_id is not None:
        raise BadRequest("a RUNNING run receives its predictions with its folds (POST /api/runs/{run_id}/folds)",
                         {"field": "status"})
    create.check_folds(body)
    budget = Budget(get_settings().questdb.questdb_request_budget_seconds)
    with db.connection() as conn:
        dataset = create.dataset_of(conn, body, lock=False)
    names = create.names_for(body, dataset)
    states = reads.table_states(names, timeout=budget.left(create.DDL_TIMEOUT), tolerant=False)
    if body.prediction_measurement is None:
        names = [n for n in names if not states[n].exists] or names[-1:]
    thresholds = list(body.threshold_columns or [])
    with db.connection() as conn, conn.transaction():
        dataset = create.dataset_of(conn, body)
        run_id, table = create.insert_run(conn, body, dataset, thresholds, names,
                                          claim=create.claimer(states, inline=True), status="RUNNING")
        conn.execute("update walkforward_runs set incremental = true, last_fold_at = now() where run_id = %s",
                     (run_id,))
        create.insert_folds(conn, run_id, body)
    log_fields(log, 20, "incremental run started", run_id=str(run_id), table=table)
    return RunCreated(run_id=run_id, dataset_id=dataset["dataset_id"], prediction_measurement=table,
                      questdb_rows_written=0, prediction_rows=0, threshold_columns=thresholds, status="RUNNING")


# ---------------------------------------------------------------------------------------- folds
def _parse(body: FoldsIn, declared: list[str]) -> preds.PredictionBatch | None:
    numbers = [f.fold_number for f in body.folds]
    duplicates = sorted({n for n in numbers if numbers.count(n) > 1})
    if duplicates:
        raise BadRequest("duplicate fold_number", {"duplicate_folds": duplicates})
    if body.predictions is not None and body.predictions_csv is not None:
        raise BadRequest("give predictions in one way only", {"fields": ["predictions", "predictions_csv"]})
    batch = None
    if body.predictions is not None:
        batch = preds.from_rows(body.predictions, declared or None)
    elif body.predictions_csv is not None:
        batch = preds.from_csv(body.predictions_csv, declared or None)
    if batch is not None:
        stray = sorted(set(batch.fold_number) - set(numbers))
        if stray:
            raise BadRequest("predictions name folds this request does not send",
                             {"fold_numbers": stray[:20], "folds": numbers[:20]})
    return batch


def _digests(table: str, batch: preds.PredictionBatch | None) -> dict[int, tuple[int, str]]:
    """Per fold: (distinct rows, sha256 of its ILP lines in sorted order), what makes a re-sent fold
    recognisable. Lines are validated text, so equal predictions give equal lines."""
    if batch is None:
        return {}
    by_fold: dict[int, list[str]] = {}
    keys: dict[int, set[int]] = {}
    for fold, ts, line in zip(batch.fold_number, batch.ts, preds.lines(table, batch), strict=True):
        by_fold.setdefault(fold, []).append(line)
        keys.setdefault(fold, set()).add(ts)
    return {fold: (len(keys[fold]), hashlib.sha256("".join(sorted(lines)).encode()).hexdigest())
            for fold, lines in by_fold.items()}


def _same(stored: dict[str, Any], fold: FoldIn, digest: tuple[int, str] | None) -> bool:
    return (all(stored[k] == getattr(fold, k) for k in _FOLD_FIELDS)
            and stored["prediction_digest"] == (digest[1] if digest else None))


def _run(conn: Connection[Any], run_id: uuid.UUID) -> dict[str, Any]:
    row = conn.execute("select run_id, status, incremental, prediction_measurement, threshold_columns, "
                       "summary_metrics, d.granularity from walkforward_runs r "
                       "join stage1_datasets d on d.dataset_id = r.dataset_id where run_id = %s",
                       (run_id,)).fetchone()
    if row is None:
        raise NotFound("run not found", {"run_id": str(run_id)})
    return row


def _not_running(row: dict[str, Any]) -> Conflict:
    return Conflict(f"the run is {row['status']}: folds are added only to a RUNNING run created with "
                    "status RUNNING", {"run_id": str(row["run_id"]), "status": row["status"],
                                       "incremental": row["incremental"]})


def add_folds(run_ref: str, body: FoldsIn) -> FoldsAdded:
    """Store folds of an incremental run (module docstring, steps 1-4)."""
    run_id = parse_uuid(run_ref, "run_id")
    with db.connection() as conn:
        run = _run(conn, run_id)
        stored = {f["fold_number"]: f for f in conn.execute(
            "select fold_number, " + ", ".join(_FOLD_FIELDS) + ", prediction_digest from walkforward_folds "  # noqa: S608
            "where run_id = %s and fold_number = any(%s)", (run_id, [f.fold_number for f in body.folds]))}
    table = run["prediction_measurement"]
    batch = _parse(body, list(run["threshold_columns"]))
    digests = _digests(table, batch)
    unchanged, new = [], []
    for fold in body.folds:
        if fold.fold_number not in stored:
            new.append(fold)
        elif _same(stored[fold.fold_number], fold, digests.get(fold.fold_number)):
            unchanged.append(fold.fold_number)
        else:
            raise Conflict("fold already stored with other data", {"fold_number": fold.fold_number,
                                                                   "run_id": str(run_id)})
    if (run["status"] != "RUNNING" or not run["incremental"]) and (new or run["status"] != "COMPLETED"):
        raise _not_running(run)  # only an all-unchanged re-send of a completed run is still answered
    written, rows = 0, None
    new_numbers = {f.fold_number for f in new}
    if batch is not None and new_numbers:
        mask = [n in new_numbers for n in batch.fold_number]
        part = _subset(batch, mask)
        written, rows = _store(table, part, run["granularity"])
    with db.connection() as conn, conn.transaction():
        locked = conn.execute("select status, threshold_columns from walkforward_runs where run_id = %s for update",
                              (run_id,)).fetchone()
        if new and (locked is None or locked["status"] != "RUNNING"):
            raise _not_running({**run, "status": locked["status"] if locked else "deleted"})
        try:
            _insert(conn, run_id, new, digests)
        except psycopg.errors.UniqueViolation:  # the same fold sent twice at once: the other one won
            raise Conflict("fold stored concurrently; send it again to compare",
                           {"run_id": str(run_id)}) from None
        thresholds = list(locked["threshold_columns"]) if locked else []
        thresholds += [c for c in (batch.extra_columns if batch else []) if c not in thresholds]
        total = conn.execute(
            "update walkforward_runs set last_fold_at = now(), updated_at = now(), threshold_columns = %s, "
            "prediction_rows = coalesce(%s, prediction_rows) where run_id = %s "
            "returning prediction_rows, status, (select count(*) from walkforward_folds where run_id = %s) as n",
            (jsonb(thresholds), rows, run_id, run_id)).fetchone()
    log_fields(log, 20, "folds stored", run_id=str(run_id), added=len(new), unchanged=len(unchanged), rows=written)
    return FoldsAdded(run_id=run_id, status=total["status"], added=sorted(new_numbers), unchanged=unchanged,
                      fold_count=total["n"], questdb_rows_written=written, prediction_rows=total["prediction_rows"])


def _subset(batch: preds.PredictionBatch, mask: list[bool]) -> preds.PredictionBatch:
    rows = [r for r, keep in zip(batch.rows, mask, strict=True) if keep]
    return preds.PredictionBatch.from_rows(batch.extra_columns, rows)


def _insert(conn: Connection[Any], run_id: uuid.UUID, folds: list[FoldIn], digests: dict[int, tuple[int, str]]) -> None:
    if not folds:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "insert into walkforward_folds (run_id, fold_number, train_start, train_end, test_start, test_end, "
            "samples_train, samples_test, thresholds, metrics, prediction_rows, prediction_digest) "
            "values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(run_id, f.fold_number, f.train_start, f.train_end, f.test_start, f.test_end, f.samples_train,
              f.samples_test, jsonb(f.thresholds), jsonb(f.metrics),
              digests[f.fold_number][0] if f.fold_number in digests else 0,
              digests[f.fold_number][1] if f.fold_number in digests else None) for f in folds],
        )


def _store(table: str, batch: preds.PredictionBatch, granularity: str) -> tuple[int, int]:
    """Create the run's table if needed, write, wait until applied, count: (rows sent, rows in the table)."""
    budget = Budget(get_settings().questdb.questdb_request_budget_seconds)
    qdb = get_questdb()
    qdb.exec(create_table_sql(Kind.PREDICTIONS, table, granularity), timeout=budget.left(create.DDL_TIMEOUT))
    sent = preds.write(table, batch, timeout=budget.left())
    wait_applied(table, timeout=budget.left())
    count = qdb.exec(f"select count() as n from {quote(table)}",  # noqa: S608 - quoted identifier
                     timeout=budget.left(create.DDL_TIMEOUT)).rows()[0]["n"]
    return sent, int(count)


# ---------------------------------------------------------------------------------------- complete
def _table_folds(table: str, budget: Budget) -> dict[int, int]:
    """Rows per fold_number in the run's table ({} if it was never created)."""
    if not reads.table_states([table], timeout=budget.left(create.DDL_TIMEOUT), tolerant=False)[table].exists:
        return {}
    wait_applied(table, timeout=budget.left())
    result = get_questdb().exec(f"select fold_number, count() as n from {quote(table)}",  # noqa: S608 - quoted
                                timeout=budget.left(create.DDL_TIMEOUT))
    return {int(r["fold_number"]): int(r["n"]) for r in result.rows() if r["fold_number"] is not None}


def complete(run_ref: str, body: RunComplete) -> RunDetail:
    """RUNNING → COMPLETED with the final summary. The table must hold exactly the recorded folds'
    rows (else 409: a fold written but never recorded; re-send it). Completing again with the same
    summary answers the run (200); with another, 409."""
    from stage1.runs.service import get_run

    run_id = parse_uuid(run_ref, "run_id")
    with db.connection() as conn:
        run = _run(conn, run_id)
        folds = {f["fold_number"]: f["prediction_rows"] for f in conn.execute(
            "select fold_number, prediction_rows from walkforward_folds where run_id = %s", (run_id,))}
    if run["status"] == "COMPLETED" and run["incremental"]:
        if body.summary_metrics is not None and body.summary_metrics != run["summary_metrics"]:
            raise Conflict("the run is COMPLETED with another summary_metrics", {"run_id": str(run_id)})
        return get_run(str(run_id))
    if run["status"] != "RUNNING" or not run["incremental"]:
        raise _not_running(run)
    budget = Budget(get_settings().questdb.questdb_request_budget_seconds)
    try:
        in_table = _table_folds(run["prediction_measurement"], budget)
    except OSError as exc:
        raise ServiceUnavailable("questdb", str(exc)[:300]) from exc
    stray = sorted(set(in_table) - set(folds))
    short = sorted(n for n, rows in folds.items() if (rows or 0) > in_table.get(n, 0))
    if stray or short:
        raise Conflict("the predictions table does not match the stored folds: re-send those folds",
                       {"unrecorded_folds": stray[:20], "folds_missing_rows": short[:20]})
    with db.connection() as conn, conn.transaction():
        done = conn.execute(
            "update walkforward_runs set status = 'COMPLETED', completed_at = coalesce(%s, now()), updated_at = now(), "
            "summary_metrics = coalesce(%s, summary_metrics), prediction_rows = %s "
            "where run_id = %s and status = 'RUNNING' returning run_id",
            (client_time(body.completed_at, "completed_at"),
             jsonb(body.summary_metrics) if body.summary_metrics is not None else None,
             sum(in_table.values()), run_id)).fetchone()
    if done is None:
        raise Conflict("the run changed while it was completed (failed by the sweeper or deleted)",
                       {"run_id": str(run_id)})
    return get_run(str(run_id))


# ---------------------------------------------------------------------------------------- sweeper
def sweep_idle() -> int:
    """Incremental runs RUNNING with no fold for `run_incremental_timeout_seconds` become FAILED.
    Their table stays registered to them (owned): deleting the run drops it."""
    timeout = get_settings().jobs.run_incremental_timeout_seconds
    with db.connection() as conn, conn.transaction():
        failed = conn.execute(
            "update walkforward_runs set status = 'FAILED', completed_at = now(), updated_at = now(), "
            "error = 'abandoned: no fold arrived for ' || %s::text || ' s and the run was never completed' "
            "where status = 'RUNNING' and incremental and job_id is null "
            "and coalesce(last_fold_at, created_at) < now() - make_interval(secs => %s) returning run_id",
            (int(timeout), timeout)).fetchall()
    if failed:
        log_fields(log, 20, "idle incremental runs failed", failed=len(failed))
    return len(failed)

