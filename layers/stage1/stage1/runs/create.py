"""POST /api/runs with inline predictions, or registering a table the client wrote itself.

No Postgres transaction waits on QuestDB (issue 11, hole 6):
1. QuestDB first, with no connection held: the state of the candidate table names (and, for a
   registration, the existing table's rows and columns).
2. tx1 (short): the dataset (FOR SHARE, released at commit), the run row PENDING, its folds and the
   claim of its predictions table in `stage1_questdb_tables` → commit.
3. QuestDB, no connection held: create the table, write, wait until applied, count — every call's
   timeout cut from one budget (`questdb_request_budget_seconds`).
4. tx2: PENDING → COMPLETED. On any failure the run row is deleted instead (no half-written run is
   left; the client saw the error and may retry) and the table it created is dropped after that
   commit. Until the drop succeeds the table stays registered to the deleted run: a retry under the
   same name adopts it, and the sweeper (`sweep_abandoned`) drops it otherwise. A function killed
   between 2 and 4 leaves the run PENDING: the sweeper marks it FAILED ("abandoned") and drops its table.

Ownership (hole 2): a run writes only into a table it created or one left by a failed attempt of a
run (adopted); an existing table registered to another record is a 409 naming it, and an existing
unregistered table is a 409 when predictions come inline. Without inline predictions an existing
unregistered table is registered with owned=false: deleting the run never drops it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import Connection

from stage1.core import db
from stage1.core.budget import Budget
from stage1.core.db import jsonb
from stage1.core.errors import BadRequest, Conflict, ServiceUnavailable, to_stage1_error
from stage1.core.logging import get_logger, log_fields
from stage1.core.questdb import IDENT_MAX, get_questdb, quote
from stage1.core.settings import get_settings
from stage1.datasets import versions
from stage1.datasets.lookup import find
from stage1.runs import predictions as preds
from stage1.runs.schemas import RunCreated, RunIn
from stage1.timeseries import cleanup, reads
from stage1.timeseries import ownership as own
from stage1.timeseries.client_times import client_time
from stage1.timeseries.kinds import Kind, create_table_sql
from stage1.timeseries.wal import wait_applied

log = get_logger("runs")

# Caps of single QuestDB calls; the request's budget (settings) bounds them together.
DDL_TIMEOUT = 5.0
NAME_CANDIDATES = 20


def parse_inline(body: RunIn) -> preds.PredictionBatch | None:
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


def check_folds(body: RunIn) -> None:
    numbers = [f.fold_number for f in body.folds]
    duplicates = sorted({n for n in numbers if numbers.count(n) > 1})
    if duplicates:
        raise BadRequest("duplicate fold_number", {"duplicate_folds": duplicates})


def insert_folds(conn: Connection[Any], run_id: uuid.UUID, body: RunIn) -> None:
    if not body.folds:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "insert into walkforward_folds (run_id, fold_number, train_start, train_end, test_start, test_end, "
            "samples_train, samples_test, thresholds, metrics) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(run_id, f.fold_number, f.train_start, f.train_end, f.test_start, f.test_end, f.samples_train,
              f.samples_test, jsonb(f.thresholds), jsonb(f.metrics)) for f in body.folds],
        )


def dataset_of(conn: Connection[Any], body: RunIn, *, lock: bool = True) -> dict[str, Any]:
    """The run's dataset (with `lock`, FOR SHARE: a concurrent delete waits for this short
    transaction); an unknown dataset is a 409 (CONTRACT.md)."""
    if body.dataset_id is None and body.dataset_slug is None:
        raise BadRequest("dataset_id is required", {"missing": ["dataset_id"]})
    by, value = ("id", body.dataset_id) if body.dataset_id else ("slug", body.dataset_slug)
    column = "dataset_id" if by == "id" else "dataset_slug"
    row = find(conn, value, by=by, columns="dataset_id, dataset_slug, granularity",  # type: ignore[arg-type]
               lock="share" if lock else "")
    if row is None:
        raise Conflict(f"unknown {column}", {column: str(value)})
    if body.dataset_id and body.dataset_slug and row["dataset_slug"] != body.dataset_slug:
        raise Conflict("dataset_id and dataset_slug name different datasets",
                       {"dataset_id": str(body.dataset_id), "dataset_slug": body.dataset_slug})
    return row


_INSERT_RUN = """
insert into walkforward_runs (run_id, dataset_id, prediction_measurement, status, target_column, feature_columns,
    threshold_columns, walk_config, hyperparameters, summary_metrics, started_at, upload_id, job_id, dataset_version)
values (coalesce(%(run_id)s, gen_random_uuid()), %(dataset_id)s, %(name)s, %(status)s, %(target_column)s,
    %(feature_columns)s, %(threshold_columns)s, %(walk_config)s, %(hyperparameters)s, %(summary_metrics)s,
    coalesce(%(started_at)s, now()), %(upload_id)s, %(job_id)s, %(dataset_version)s)
on conflict (prediction_measurement) do nothing
returning run_id
"""


def insert_run(conn: Connection[Any], body: RunIn, dataset: dict[str, Any], thresholds: list[str], names: list[str],
               *, upload: dict[str, Any] | None = None,
               claim: Any = None, status: str | None = None) -> tuple[uuid.UUID, str]:
    """Insert the run under the first of `names` no run uses and `claim(conn, name, run_id)`
    accepts (a Conflict from it: the next name; the last name's Conflict is raised)."""
    params = {
        "status": status or ("RUNNING" if upload else "PENDING"), "upload_id": upload["upload_id"] if upload else None,
        "job_id": upload["job_id"] if upload else None,
        "run_id": body.run_id, "dataset_id": dataset["dataset_id"], "target_column": body.target_column,
        "feature_columns": jsonb(body.feature_columns), "threshold_columns": jsonb(thresholds),
        "walk_config": jsonb(body.walk_config), "hyperparameters": jsonb(body.hyperparameters),
        "summary_metrics": jsonb(body.summary_metrics), "started_at": client_time(body.started_at, "started_at"),
        # which data the run saw: the dataset's stored version now (tx1, never recomputed here)
        "dataset_version": jsonb(versions.seen(conn, dataset["dataset_id"])),
    }
    if body.run_id is not None and conn.execute("select 1 from walkforward_runs where run_id = %s",
                                                (body.run_id,)).fetchone():
        raise Conflict("run_id already exists", {"run_id": str(body.run_id)})
    refused: Conflict | None = None
    for name in names:
        try:
            with conn.transaction():  # a savepoint: a refused name must not abort the outer transaction
                row = conn.execute(_INSERT_RUN, {**params, "name": name}).fetchone()
                if row is None:
                    refused = Conflict("prediction_measurement is already used by another run",
                                       {"prediction_measurement": name})
                    continue
                if claim is not None:
                    claim(conn, name, row["run_id"])
                return row["run_id"], name
        except psycopg.errors.UniqueViolation:
            raise Conflict("run_id already exists", {"run_id": str(body.run_id)}) from None
        except Conflict as exc:
            refused = exc
    if len(names) > 1:
        raise Conflict("no free prediction_measurement name; give one", {"tried": names[-1]})
    assert refused is not None
    raise refused


def claimer(states: dict[str, reads.TableState], inline: bool) -> Any:
    def claim(conn: Connection[Any], name: str, run_id: uuid.UUID) -> own.Registration:
        owner = own.Owner("run", run_id)
        if own.adopt_orphan(conn, name, owner):  # left by a failed attempt whose drop did not happen
            return own.require_writer(conn, name, owner)
        exists = bool(states[name].exists)
        if inline and exists and own.owner_of(conn, name) is None:
            raise Conflict(f"{name} exists in QuestDB and was not created by the service: a run writes its "
                           "predictions only into a table of its own",
                           {"table": name, "owner_kind": None, "owner_id": None})
        return own.claim(conn, name, owner, "predictions", exists=exists)
    return claim


def existing_table(table: str, declared: list[str] | None, budget: Budget) -> tuple[int, list[str]]:
    """Row count and threshold columns of a measurement the client wrote itself (registration)."""
    wait_applied(table, timeout=budget.left())
    state = reads.table_states([table], timeout=budget.left(DDL_TIMEOUT), tolerant=False)[table]
    if declared is not None:
        return state.row_count or 0, list(declared)
    known = {*preds.TS_COLUMNS, *preds.BASE_COLUMNS}
    extras = [c.name.lower() for c in reads.table_columns(table) if not c.designated and c.name.lower() not in known]
    return state.row_count or 0, extras


def _store_predictions(table: str, batch: preds.PredictionBatch, granularity: str, created: bool,
                       budget: Budget) -> tuple[int, int]:
    """Create the table if needed, write, wait until applied, count: (rows sent, rows in the table)."""
    qdb = get_questdb()
    qdb.exec(create_table_sql(Kind.PREDICTIONS, table, granularity), timeout=budget.left(DDL_TIMEOUT))
    sent = preds.write(table, batch, timeout=budget.left())
    wait_applied(table, timeout=budget.left())
    count = qdb.exec(f"select count() as n from {quote(table)}",  # noqa: S608 - quoted identifier
                     timeout=budget.left(DDL_TIMEOUT)).rows()[0]["n"]
    expected = batch.distinct_keys
    if count < expected or (created and count != expected):
        raise ServiceUnavailable("questdb", "row count after the write does not match",
                                 {"expected": expected, "found": count, "table": table})
    return sent, int(count)


def _abort(run_id: uuid.UUID, table: str, created: bool) -> None:
    """The write failed: delete the run (its folds cascade) and drop the table it created, after
    the commit. A Postgres failure here leaves the run PENDING for the sweeper. (No registration
    left but `created`: the run was deleted meanwhile and an ILP write may have made the table again.)"""
    try:
        with db.connection() as conn, conn.transaction():
            reg = own.owner_of(conn, table)
            conn.execute("delete from walkforward_runs where run_id = %s and status = 'PENDING'", (run_id,))
    except Exception as exc:
        log.warning("run %s left PENDING for the sweeper: %s", run_id, to_stage1_error(exc).message)
        return
    mine = own.Registration(table, own.Owner("run", run_id), "predictions", True)
    if (reg is None and created) or reg == mine:
        cleanup.drop_registered(mine)  # if QuestDB does not answer, the sweeper drops it later


_COMPLETE = ("update walkforward_runs set status = 'COMPLETED', completed_at = coalesce(%s, now()), "
             "prediction_rows = %s, threshold_columns = %s, updated_at = now() "
             "where run_id = %s and status = 'PENDING' returning run_id")


def names_for(body: RunIn, dataset: dict[str, Any]) -> list[str]:
    if body.prediction_measurement is not None:
        return [own.check_name(body.prediction_measurement, "prediction_measurement")]
    return _candidates(dataset["dataset_slug"], datetime.now(UTC))


def create_run(body: RunIn) -> RunCreated:
    """Store a run, its folds and its inline predictions (or register an existing table); see the
    module docstring for the steps and what a failure leaves behind."""
    check_folds(body)  # every 400 about the payload comes before anything is read or written
    batch = parse_inline(body)
    budget = Budget(get_settings().questdb.questdb_request_budget_seconds)
    thresholds = batch.extra_columns if batch is not None else list(body.threshold_columns or [])
    with db.connection() as conn:  # a plain read: nothing stays locked while QuestDB is asked
        dataset = dataset_of(conn, body, lock=False)
    names = names_for(body, dataset)
    states = reads.table_states(names, timeout=budget.left(DDL_TIMEOUT), tolerant=False)
    if body.prediction_measurement is None:  # generated names: skip tables left by crashed attempts
        names = [n for n in names if not states[n].exists] or names[-1:]
    if batch is None:
        return _register(body, names, states, thresholds, budget)
    with db.connection() as conn, conn.transaction():  # tx1
        dataset = dataset_of(conn, body)
        run_id, table = insert_run(conn, body, dataset, thresholds, names, claim=claimer(states, inline=True))
        insert_folds(conn, run_id, body)
    created = not states[table].exists
    try:
        written, rows = _store_predictions(table, batch, dataset["granularity"], created, budget)
        with db.connection() as conn, conn.transaction():  # tx2
            done = conn.execute(_COMPLETE, (client_time(body.completed_at, "completed_at"), rows, jsonb(thresholds),
                                            run_id)).fetchone()
        if done is None:  # deleted (or failed by the sweeper) while the rows were written
            raise Conflict("the run was deleted (or failed as abandoned) while its predictions were written",
                           {"run_id": str(run_id)})
    except BaseException:
        _abort(run_id, table, created)
        raise
    log_fields(log, 20, "run stored", run_id=str(run_id), table=table, rows_written=written,
               seconds=round(get_settings().questdb.questdb_request_budget_seconds - budget.remaining(), 3))
    return RunCreated(run_id=run_id, dataset_id=dataset["dataset_id"], prediction_measurement=table,
                      questdb_rows_written=written, prediction_rows=rows, threshold_columns=thresholds,
                      status="COMPLETED")


def _register(body: RunIn, names: list[str], states: dict[str, reads.TableState], thresholds: list[str],
              budget: Budget) -> RunCreated:
    """No rows to write: read the existing table's rows and columns first, then one short transaction."""
    rows = 0
    if len(names) == 1 and states[names[0]].exists:
        rows, thresholds = existing_table(names[0], body.threshold_columns, budget)
    with db.connection() as conn, conn.transaction():
        dataset = dataset_of(conn, body)
        run_id, table = insert_run(conn, body, dataset, thresholds, names, claim=claimer(states, inline=False))
        insert_folds(conn, run_id, body)
        conn.execute(_COMPLETE, (client_time(body.completed_at, "completed_at"), rows, jsonb(thresholds), run_id))
    log_fields(log, 20, "run registered", run_id=str(run_id), table=table, rows=rows)
    return RunCreated(run_id=run_id, dataset_id=dataset["dataset_id"], prediction_measurement=table,
                      questdb_rows_written=0, prediction_rows=rows, threshold_columns=thresholds, status="COMPLETED")
