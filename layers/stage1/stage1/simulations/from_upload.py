"""Big backtests: `POST /api/simulations` with `trades_upload_id` (an upload of kind `trades`).

Why the trades end in Postgres, not in a QuestDB table of the simulation: every reader of trades
(`/trades` JSON and CSV, `/equity`, the buckets, delete's cascade) already reads `simulation_trades`,
and the buckets are one SQL statement there; a second store would mean a second copy of each read
path. What the upload pipeline gives us is the file checked and normalised by the importer (required
columns first — a missing one FAILS the job naming it —, timestamps in every unit, the size and
expansion limits), in the upload's QuestDB table. Loading it:

1. the simulation row is created RUNNING, linked to the upload and its import job (`job_id`);
2. once that job is COMPLETED, one loader (the lease `load_until`) streams the upload's table out of
   QuestDB (`/exp` CSV, read through a small buffer: memory bounded by bytes, never the whole table)
   into `simulation_trades` with COPY, `simulation_load_batch_rows` rows per transaction — no
   transaction is held while QuestDB is read between batches;
3. one short transaction computes the buckets from the stored trades, checks the count and flips
   the simulation to COMPLETED. A job FAILED or CANCELLED makes the simulation FAILED with its error.

Until COMPLETED the trades, equity and buckets are never served: readers get 409 with the status
and the job's poll_url (`require_whole`), so the simulation is never visible half-written. The load
runs when the simulation is created, when it is read, and from the sweeper (`settle_waiting`).
"""

from __future__ import annotations

import csv
import io
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import Connection

from stage1.core import db
from stage1.core.db import jsonb
from stage1.core.errors import BadRequest, Conflict, NotFound, ServiceUnavailable, Stage1Error, to_stage1_error
from stage1.core.logging import get_logger, log_fields
from stage1.core.questdb import get_questdb, quote
from stage1.core.settings import get_settings
from stage1.simulations import store
from stage1.simulations.schemas import SimulationIn
from stage1.timeseries import cleanup, reads
from stage1.timeseries import ownership as own

log = get_logger("simulations.upload")

LEASE_SECONDS = 120  # one loader at a time; renewed every batch
SWEEP_LOAD_SECONDS = 30.0  # the sweeper's share of its 60 s for loading (each pass goes on where the last stopped)
EXPORT_TIMEOUT = 600.0
# The trade's own columns (the rest of the upload's columns go in `extra`).
_KNOWN = ("timestamp", "trade_index", "side", "entry_price", "exit_price", "quantity", "pnl", "return_pct")
REQUIRED = ("side", "pnl")
_COPY = ("copy simulation_trades (simulation_id, trade_index, bar_timestamp, side, entry_price, exit_price, quantity, "
         "pnl, return_pct, extra) from stdin")


# ---------------------------------------------------------------------------------------- create
def _upload(conn: Connection[Any], upload_id: uuid.UUID) -> dict[str, Any]:
    row = conn.execute(
        "select u.upload_id, u.kind, u.measurement, u.job_id, j.status as job_status, j.error, j.result "
        "from stage1_uploads u join stage1_jobs j on j.job_id = u.job_id where u.upload_id = %s",
        (upload_id,)).fetchone()
    if row is None:
        raise Conflict("unknown trades_upload_id", {"trades_upload_id": str(upload_id)})
    if row["kind"] != "trades":
        raise BadRequest("the upload is not of kind trades", {"trades_upload_id": str(upload_id),
                                                              "kind": row["kind"]})
    missing = ((row["result"] or {}).get("error_details") or {}).get("missing_columns")
    if row["job_status"] == "FAILED" and missing:
        raise BadRequest(f"the uploaded trades lack required columns: {', '.join(missing)}",
                         {"missing_columns": missing, "trades_upload_id": str(upload_id),
                          "job_id": str(row["job_id"])})
    if row["job_status"] in ("FAILED", "CANCELLED"):
        raise Conflict(f"the upload's import is {row['job_status']}",
                       {"job_id": str(row["job_id"]), "job_error": row["error"]})
    return row


def create(body: SimulationIn, owner: Any) -> uuid.UUID:
    """The simulation RUNNING, linked to the upload's job; loaded now if the import is done
    (`settle`). `owner(conn, body)` gives (run_id, dataset_id) as for inline trades."""
    if body.trades:
        raise BadRequest("give trades inline or as trades_upload_id, not both", {"fields": ["trades",
                                                                                           "trades_upload_id"]})
    assert body.trades_upload_id is not None
    simulation_id = body.simulation_id or uuid.uuid4()
    with db.connection() as conn, conn.transaction():
        run_id, dataset_id = owner(conn, body)
        upload = _upload(conn, body.trades_upload_id)
        store.insert_record(conn, simulation_id, run_id, dataset_id, body, status="RUNNING", trade_count=0,
                            completed_now=False, trades_upload_id=upload["upload_id"], job_id=upload["job_id"])
    settle(simulation_id)
    return simulation_id


# ---------------------------------------------------------------------------------------- readers
def require_whole(conn: Connection[Any], simulation_id: uuid.UUID) -> None:
    """404 if unknown; 409 with the status and the job's poll_url unless COMPLETED (its trades,
    equity and buckets are then whole)."""
    row = conn.execute("select status, error, job_id from simulation_runs where simulation_id = %s",
                       (simulation_id,)).fetchone()
    if row is None:
        raise NotFound("simulation not found", {"simulation_id": str(simulation_id)})
    if row["status"] != "COMPLETED":
        job = str(row["job_id"]) if row["job_id"] else None
        raise Conflict(f"the simulation is {row['status']}: its trades are not available",
                       {"status": row["status"], "error": row["error"], "job_id": job,
                        "poll_url": f"/api/jobs/{job}" if job else None})


# ---------------------------------------------------------------------------------------- loading
def settle(simulation_id: uuid.UUID, seconds: float | None = None) -> None:
    """Move a RUNNING simulation whose import ended to COMPLETED (trades loaded, buckets computed)
    or FAILED. Idempotent and safe to call from any reader: one loader at a time (the lease); a
    backing service that does not answer leaves it RUNNING for the next call. The load resumes
    after the last stored trade and stops after `seconds` (default: 3/4 of a request's budget), so
    every call — a reader within its Lambda's 29 s, the sweeper within its 60 s — makes progress and
    a backtest of any size completes over several calls."""
    with db.connection() as conn:
        row = conn.execute(
            "select s.status, s.trades_upload_id, u.measurement, j.status as job_status, j.error, j.result "
            "from simulation_runs s join stage1_jobs j on j.job_id = s.job_id "
            "left join stage1_uploads u on u.upload_id = s.trades_upload_id where s.simulation_id = %s",
            (simulation_id,)).fetchone()
    if row is None or row["status"] not in ("PENDING", "RUNNING") or row["job_status"] in ("PENDING", "RUNNING"):
        return
    if row["job_status"] != "COMPLETED" or row["measurement"] is None:
        _fail(simulation_id, f"trades import {row['job_status'].lower()}: {row['error'] or 'no reason given'}")
        return
    if not _lease(simulation_id):
        return  # another loader has it
    try:
        budget = seconds if seconds is not None else get_settings().questdb.questdb_request_budget_seconds * 0.75
        if _load(simulation_id, row["measurement"], int((row["result"] or {}).get("rows") or 0), budget):
            _drop_upload_table(row["measurement"], row["trades_upload_id"])
        else:
            _release(simulation_id)  # the next call goes on from the last stored trade
    except Stage1Error as exc:
        if isinstance(exc, ServiceUnavailable):
            log.warning("simulation %s not loaded yet: %s", simulation_id, exc.message)
            _release(simulation_id)
        else:
            _fail(simulation_id, exc.message)
    except (OSError, psycopg.OperationalError) as exc:
        log.warning("simulation %s not loaded yet: %s", simulation_id, exc)
        _release(simulation_id)
    except Exception as exc:
        log.exception("simulation load crashed")
        _fail(simulation_id, f"internal error while loading the trades: {to_stage1_error(exc).message[:300]}")


def _lease(simulation_id: uuid.UUID) -> bool:
    with db.connection() as conn:
        return conn.execute(
            "update simulation_runs set load_until = now() + make_interval(secs => %s) where simulation_id = %s "
            "and status in ('PENDING', 'RUNNING') and (load_until is null or load_until < now()) returning 1",
            (LEASE_SECONDS, simulation_id)).fetchone() is not None


def _release(simulation_id: uuid.UUID) -> None:
    with db.connection() as conn:
        conn.execute("update simulation_runs set load_until = null where simulation_id = %s", (simulation_id,))


def _fail(simulation_id: uuid.UUID, error: str) -> None:
    with db.connection() as conn, conn.transaction():
        conn.execute("delete from simulation_trades where simulation_id = %s", (simulation_id,))
        conn.execute("update simulation_runs set status = 'FAILED', error = %s, load_until = null, trade_count = 0, "
                     "completed_at = now(), updated_at = now() where simulation_id = %s "
                     "and status in ('PENDING', 'RUNNING')", (error[:2000], simulation_id))
    log_fields(log, 30, "simulation failed", simulation_id=str(simulation_id), error=error[:300])


class _ChunkReader(io.RawIOBase):
    """A byte stream over an iterator of chunks: csv reads it line by line through a small buffer."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks, self._left = chunks, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._left:
            try:
                self._left = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._left))
        buffer[:n], self._left = self._left[:n], self._left[n:]
        return n


def _number(text: str) -> float | None:
    return float(text) if text != "" else None


_INTEGER = frozenset({"byte", "short", "int", "long"})
_FLOAT = frozenset({"float", "double"})


def _converter(qdb_type: str) -> Any:
    """An extra column's CSV text back to its QuestDB type (numbers stay numbers in `extra`)."""
    t = qdb_type.lower()
    if t in _INTEGER:
        return int
    if t in _FLOAT:
        return float
    if t == "boolean":
        return lambda v: v == "true"
    return str


def _rows(simulation_id: uuid.UUID, reader: Any, extras: list[tuple[str, Any]]) -> Iterator[tuple[Any, ...]]:
    """CSV rows of the export (header skipped) as `simulation_trades` rows."""
    next(reader, None)
    for cells in reader:
        ts, index, side, entry, exit_, qty, pnl, ret, *rest = cells
        if side == "" or pnl == "":
            empty = [c for c, v in (("side", side), ("pnl", pnl)) if v == ""]
            raise BadRequest("a trade without side or pnl", {"trade_index": index, "missing_columns": empty})
        extra = {name: convert(value) for (name, convert), value in zip(extras, rest, strict=True) if value != ""}
        yield (simulation_id, int(index), int(ts) // 1_000_000, side, _number(entry), _number(exit_),
               _number(qty), float(pnl), _number(ret), jsonb(extra))


def _load(simulation_id: uuid.UUID, table: str, expected: int, seconds: float) -> bool:
    """Copy the trades after the last one stored (resumable: each batch is one transaction, in
    trade_index order); True once all are in and the simulation is COMPLETED, False when `seconds`
    ran out first."""
    columns = reads.table_columns(table)
    present = {c.name.lower() for c in columns}
    missing = [c for c in REQUIRED if c not in present]
    if missing:
        raise BadRequest(f"the uploaded trades lack required columns: {', '.join(missing)}",
                         {"missing_columns": missing})
    extras = [(c.name, _converter(c.type)) for c in columns if c.name.lower() not in _KNOWN and not c.designated]
    optional = ("entry_price", "exit_price", "quantity", "pnl", "return_pct")
    wanted = ["cast(timestamp as long)", "trade_index", "side",
              *(quote(c, "column") if c in present else "null" for c in optional),
              *(quote(c, "column") for c, _ in extras)]
    batch_rows = get_settings().jobs.simulation_load_batch_rows
    with db.connection() as conn:
        last = conn.execute("select coalesce(max(trade_index), -1) as n from simulation_trades "
                            "where simulation_id = %s", (simulation_id,)).fetchone()["n"]
    query = (f"select {', '.join(wanted)} from {quote(table)} where trade_index > {int(last)} "  # noqa: S608 - quoted
             "order by trade_index")
    started = time.monotonic()
    finished = False
    with get_questdb().export(query, timeout=EXPORT_TIMEOUT) as chunks:
        text = io.TextIOWrapper(io.BufferedReader(_ChunkReader(chunks), 1 << 16), encoding="utf-8", newline="")
        rows = _rows(simulation_id, csv.reader(text), extras)
        while True:
            with db.connection() as conn, conn.transaction():  # one batch; the next QuestDB read holds nothing
                with conn.cursor() as cur, cur.copy(_COPY) as copy:
                    n = 0
                    for row in rows:
                        copy.write_row(row)
                        n += 1
                        if n == batch_rows:
                            break
                conn.execute("update simulation_runs set load_until = now() + make_interval(secs => %s) "
                             "where simulation_id = %s", (LEASE_SECONDS, simulation_id))
            if n < batch_rows:
                finished = True
                break
            if time.monotonic() - started > seconds:
                break
    if not finished:
        log_fields(log, 20, "simulation load paused", simulation_id=str(simulation_id), after_index=int(last),
                   seconds=round(time.monotonic() - started, 3))
        return False
    with db.connection() as conn:
        stored = conn.execute("select count(*) as n from simulation_trades where simulation_id = %s",
                              (simulation_id,)).fetchone()["n"]
    if stored != expected:
        raise BadRequest("the upload's table holds other rows than its import wrote (shared with another "
                         "upload?): give each trades upload a measurement of its own",
                         {"table": table, "imported": expected, "found": stored})
    copied = time.monotonic()
    _complete(simulation_id, stored)
    log_fields(log, 20, "simulation trades loaded", simulation_id=str(simulation_id), trades=stored,
               copy_seconds=round(copied - started, 3), buckets_seconds=round(time.monotonic() - copied, 3))
    return True


def _complete(simulation_id: uuid.UUID, stored: int) -> None:
    from stage1.simulations.service import BUCKETS_SQL

    with db.connection() as conn, conn.transaction():
        conn.execute("delete from simulation_trade_buckets where simulation_id = %s", (simulation_id,))
        conn.execute(BUCKETS_SQL, {"id": simulation_id})
        done = conn.execute(
            "update simulation_runs set status = 'COMPLETED', trade_count = %s, load_until = null, "
            "completed_at = coalesce(completed_at, now()), updated_at = now() where simulation_id = %s "
            "and status in ('PENDING', 'RUNNING') returning 1", (stored, simulation_id)).fetchone()
        if done is None:
            raise Conflict("the simulation was deleted or failed while its trades were loaded",
                           {"simulation_id": str(simulation_id)})
    log_fields(log, 20, "simulation loaded from its upload", simulation_id=str(simulation_id), trades=stored)


def _drop_upload_table(table: str, upload_id: uuid.UUID) -> None:
    """The trades are in Postgres now: the upload's own QuestDB table (created by its import) goes,
    best effort (a table it only appended to, or one registered to anyone else, stays)."""
    try:
        with db.connection() as conn:
            reg = own.owner_of(conn, table)
        if reg is not None and reg.owned and reg.owner == own.Owner("upload", upload_id):
            cleanup.drop_registered(reg)
    except Exception as exc:
        log_fields(log, 30, "upload table not dropped", table=table, error=str(exc)[:300])


def settle_waiting(limit: int = 20) -> int:
    """For the sweeper: settle simulations whose import ended (an event's reader may never come)."""
    with db.connection() as conn:
        ids = [r["simulation_id"] for r in conn.execute(
            "select s.simulation_id from simulation_runs s join stage1_jobs j on j.job_id = s.job_id "
            "where s.status in ('PENDING', 'RUNNING') and j.status not in ('PENDING', 'RUNNING') "
            "and (s.load_until is null or s.load_until < now()) limit %s", (limit,))]
    for simulation_id in ids:
        settle(simulation_id, seconds=SWEEP_LOAD_SECONDS / max(1, len(ids)))
    return len(ids)
