"""Jobs in Postgres. Every state change is one SQL statement, so it is atomic on its own.

Life of a job: `create_job` (PENDING) → `claim` (RUNNING, attempts+1, a lease held by `owner`)
→ `report_progress` (extends the lease; raises `JobAborted` when the job was cancelled or the
lease was taken over) → `complete` / `fail`. A worker that dies stops renewing its lease; `sweep`
returns RUNNING jobs whose lease expired to PENDING while attempts < max_attempts (the caller
re-dispatches them) and marks the others FAILED. `cancel` and `retry` are the user's verbs.

`owner` is any string naming the worker (e.g. the Lambda request id); only the lease owner can
move a RUNNING job forward, so a worker whose lease was reclaimed cannot overwrite the new run.
"""

# Only this module's constant SQL fragments (column lists, fixed conditions) are interpolated;
# every value is a bind parameter.
# ruff: noqa: S608

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import Connection
from psycopg.types.json import Jsonb

from stage1.auth.scopes import Caller, current_caller
from stage1.core import db
from stage1.core.errors import Conflict, NotFound
from stage1.core.refs import as_uuid
from stage1.core.settings import get_settings
from stage1.core.times import iso
from stage1.core.where import Where
from stage1.jobs.schemas import JobOut

PENDING, RUNNING, COMPLETED, FAILED, CANCELLED = "PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"
STATUSES = (PENDING, RUNNING, COMPLETED, FAILED, CANCELLED)
TERMINAL = (COMPLETED, FAILED, CANCELLED)
# Attempts a retry grants on top of those already made.
RETRY_ATTEMPTS = 3

_COLUMNS = (
    "job_id, job_type, status, idempotency_key, payload, progress, total, result, error, attempts, "
    "max_attempts, lease_owner, lease_expires_at, created_at, updated_at, started_at, completed_at, created_by"
)


@dataclass(frozen=True)
class Job:
    job_id: str
    job_type: str
    status: str
    idempotency_key: str | None
    payload: dict[str, Any]
    progress: int
    total: int | None
    result: Any
    error: str | None
    attempts: int
    max_attempts: int
    lease_owner: str | None
    lease_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    # The token whose request created the job (None: made before migration 0013, or without auth).
    created_by: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Job:
        creator = row.get("created_by")
        return cls(**{**row, "job_id": str(row["job_id"]), "created_by": str(creator) if creator else None})

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def out(self) -> JobOut:
        return JobOut(
            job_id=self.job_id, job_type=self.job_type, status=self.status, progress=self.progress,
            total=self.total, result=self.result, error=self.error, attempts=self.attempts,
            created_at=iso(self.created_at), updated_at=iso(self.updated_at),
            started_at=iso(self.started_at), completed_at=iso(self.completed_at),
        )


class JobAborted(Exception):  # noqa: N818 - a signal, not a failure of the caller
    """The job is no longer ours to run: it was cancelled, or its lease expired and was reclaimed.
    A worker stops at once and writes nothing more."""

    def __init__(self, job_id: str, status: str | None) -> None:
        super().__init__(f"job {job_id} is {status or 'gone'}; stopping")
        self.job_id = job_id
        self.status = status


def parse_id(job_id: str) -> str | None:
    return None if (parsed := as_uuid(job_id)) is None else str(parsed)


def _one(conn: Connection[Any], sql: str, params: tuple[Any, ...]) -> Job | None:
    row = conn.execute(sql, params).fetchone()
    return Job.from_row(row) if row else None


class _RequestCaller:
    """`create_job`'s default creator: the token of the request being served."""


REQUEST_CALLER = _RequestCaller()


def create_job(
    conn: Connection[Any], job_type: str, payload: dict[str, Any], *,
    idempotency_key: str | None = None, total: int | None = None, max_attempts: int = 3,
    created_by: str | None | _RequestCaller = REQUEST_CALLER,
) -> Job:
    """A PENDING job, in the caller's transaction. With an `idempotency_key` that already names a
    job, that job is returned unchanged (one job per object, however many events arrive).
    `created_by` (a token id) decides who may see the job; by default it is the token of the API
    request being served (`stage1.auth.scopes.current_caller`), None outside a request."""
    if isinstance(created_by, _RequestCaller):
        caller = current_caller.get()
        created_by = caller.token_id if caller is not None else None
    job = _one(
        conn,
        f"insert into stage1_jobs (job_type, payload, idempotency_key, total, max_attempts, created_by) "
        # The creator through a lookup: a token id the tokens table does not hold (deleted since it was
        # authorised, or a synthetic caller) makes a creator-less job, never a foreign-key error (a 500).
        f"values (%s, %s, %s, %s, %s, (select token_id from stage1_api_tokens where token_id = %s)) "
        f"on conflict (idempotency_key) do nothing returning {_COLUMNS}",
        (job_type, Jsonb(payload), idempotency_key, total, max_attempts, created_by),
    )
    if job is None:
        job = _one(conn, f"select {_COLUMNS} from stage1_jobs where idempotency_key = %s", (idempotency_key,))
        if job is None:  # deleted between the two statements: practically impossible
            raise Conflict("job with this idempotency key vanished; retry", {"idempotency_key": idempotency_key})
    return job


def find_job(job_id: str, caller: Caller | None = None) -> Job | None:
    """The job, or None if there is none or `caller` may not see it (a job is its creator's and
    the admins'; None: no caller to check, e.g. a worker or auth turned off)."""
    jid = parse_id(job_id)
    if jid is None:
        return None
    with db.connection() as conn:
        job = _one(conn, f"select {_COLUMNS} from stage1_jobs where job_id = %s", (jid,))
    return job if job is not None and (caller is None or caller.sees(job.created_by)) else None


def get_job(job_id: str, caller: Caller | None = None) -> Job:
    """As `find_job`, or 404: a job the caller may not see answers exactly like a missing one."""
    job = find_job(job_id, caller)
    if job is None:
        raise NotFound("no such job", {"job_id": str(job_id)[:64]})
    return job


def find_by_key(idempotency_key: str) -> Job | None:
    with db.connection() as conn:
        return _one(conn, f"select {_COLUMNS} from stage1_jobs where idempotency_key = %s", (idempotency_key,))


def list_jobs(*, status: str | None, job_type: str | None, limit: int, offset: int,
              caller: Caller | None = None) -> tuple[list[Job], int]:
    """Newest first; with a non-admin `caller`, only the jobs it created."""
    where = Where()
    if caller is not None and not caller.admin:
        # None matches nothing (`created_by = null`): a token-less caller sees no jobs.
        where.add("created_by = %(created_by)s", created_by=caller.token_id)
    where.eq("status", "status", status or None).eq("job_type", "job_type", job_type or None)
    with db.connection() as conn:
        total = conn.execute(f"select count(*) as n from stage1_jobs{where.sql()}", where.params).fetchone()["n"]
        rows = conn.execute(
            f"select {_COLUMNS} from stage1_jobs{where.sql()} order by created_at desc, job_id "
            "limit %(limit)s offset %(offset)s",
            {**where.params, "limit": limit, "offset": offset},
        ).fetchall()
    return [Job.from_row(r) for r in rows], total


def _lease(lease_seconds: int | None) -> int:
    return int(lease_seconds or get_settings().jobs.job_lease_seconds)


_CLAIM_SET = (
    "set status = 'RUNNING', attempts = attempts + 1, lease_owner = %s, "
    "lease_expires_at = now() + make_interval(secs => %s), started_at = coalesce(started_at, now()), "
    "updated_at = now(), error = null, retry_at = null, payload = payload - 'committing'"
)


def claim(job_id: str, owner: str, lease_seconds: int | None = None) -> Job | None:
    """PENDING → RUNNING for this owner, atomically; None if the job is not PENDING (someone else
    holds it, it is finished, or it was cancelled). It waits for a row lock (no SKIP LOCKED): the
    sweeper's `touch` right after a dispatch holds one for a moment, and skipping it made the worker
    it had just started give up ("not claimable"), leaving the job PENDING for another 30 s sweep.
    A concurrent claimer that wins is seen after the wait (the row is no longer PENDING): None."""
    jid = parse_id(job_id)
    if jid is None:
        return None
    with db.connection() as conn:
        return _one(
            conn,
            f"update stage1_jobs {_CLAIM_SET} where job_id = (select job_id from stage1_jobs "
            f"where job_id = %s and status = 'PENDING' for update) returning {_COLUMNS}",
            (owner, _lease(lease_seconds), jid),
        )


def claim_for_commit(conn: Connection[Any], job_id: str, owner: str, lease_seconds: int | None = None) -> Job | None:
    """A chunked upload's job, for the invocation that commits it (in the caller's transaction, under
    the upload's lock): PENDING, or RUNNING without a lease owner (chunks importing) → RUNNING with a
    lease for `owner`, as `claim` does. None if someone else holds it or it finished."""
    return _one(
        conn,
        f"update stage1_jobs {_CLAIM_SET} where job_id = %s and (status = 'PENDING' or "
        f"(status = 'RUNNING' and lease_owner is null)) returning {_COLUMNS}",
        (owner, _lease(lease_seconds), job_id),
    )


def start_chunks(conn: Connection[Any], job_id: str) -> None:
    """A chunked upload's first chunk import began: PENDING → RUNNING without a lease (each chunk
    holds its own; `sweep` leaves a lease-less job alone)."""
    conn.execute("update stage1_jobs set status = 'RUNNING', started_at = coalesce(started_at, now()), "
                 "updated_at = now(), error = null, retry_at = null, lease_owner = null, lease_expires_at = null "
                 "where job_id = %s and status = 'PENDING'", (job_id,))


def chunks_progress(conn: Connection[Any], job_id: str, progress: int, total: int | None) -> str | None:
    """Progress of a chunked upload's job while its chunks import (RUNNING, no lease owner). Returns
    None while it is so, else the job's status (cancelled, failed, committing: the chunk stops)."""
    row = conn.execute(
        "update stage1_jobs set progress = %s, total = coalesce(%s, total), updated_at = now() "
        "where job_id = %s and status = 'RUNNING' and lease_owner is null returning job_id",
        (int(progress), total, job_id)).fetchone()
    if row is not None:
        return None
    return _status(conn, job_id) or "GONE"


def claim_next(job_type: str, owner: str, lease_seconds: int | None = None) -> Job | None:
    """The oldest PENDING job of a type, claimed atomically (for polling workers)."""
    with db.connection() as conn:
        return _one(
            conn,
            f"update stage1_jobs {_CLAIM_SET} where job_id = (select job_id from stage1_jobs "
            f"where job_type = %s and status = 'PENDING' order by created_at limit 1 for update skip locked) "
            f"returning {_COLUMNS}",
            (owner, _lease(lease_seconds), job_type),
        )


def _status(conn: Connection[Any], jid: str) -> str | None:
    row = conn.execute("select status from stage1_jobs where job_id = %s", (jid,)).fetchone()
    return row["status"] if row else None


def report_progress(
    job_id: str, owner: str, progress: int, total: int | None = None, lease_seconds: int | None = None,
) -> None:
    """Record progress and extend the lease. Raises `JobAborted` if the job is no longer RUNNING
    under this owner (cancelled, or reclaimed after the lease expired)."""
    with db.connection() as conn:
        row = conn.execute(
            "update stage1_jobs set progress = %s, total = coalesce(%s, total), updated_at = now(), "
            "lease_expires_at = now() + make_interval(secs => %s) "
            "where job_id = %s and status = 'RUNNING' and lease_owner = %s returning job_id",
            (int(progress), total, _lease(lease_seconds), job_id, owner),
        ).fetchone()
        if row is None:
            raise JobAborted(job_id, _status(conn, job_id))


def clean(value: Any) -> Any:
    """Text from a hostile file (an error quoting its bytes) made storable: Postgres text and jsonb
    refuse NUL and lone surrogates, and a failing UPDATE would leave the job RUNNING."""
    if isinstance(value, str):
        return value.replace("\x00", "\\x00").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def complete(job_id: str, owner: str, result: Any, *, progress: int | None = None) -> bool:
    """RUNNING → COMPLETED with `result` (JSON). False if the job was not ours any more."""
    with db.connection() as conn:
        row = conn.execute(
            "update stage1_jobs set status = 'COMPLETED', result = %s, progress = coalesce(%s, progress), "
            "error = null, completed_at = now(), updated_at = now(), lease_owner = null, lease_expires_at = null "
            "where job_id = %s and status = 'RUNNING' and lease_owner = %s returning job_id",
            (Jsonb(clean(result)), progress, job_id, owner),
        ).fetchone()
    return row is not None


def fail(job_id: str, owner: str | None, error: str, *, result: Any = None) -> bool:
    """→ FAILED with `error`. With an owner: only while RUNNING under that owner. Without one
    (a failure found before any worker claimed the job): from PENDING or RUNNING."""
    cond = "status = 'RUNNING' and lease_owner = %s" if owner is not None else "status in ('PENDING', 'RUNNING')"
    params: tuple[Any, ...] = (clean(error[:4000]), Jsonb(clean(result)) if result is not None else None, job_id)
    with db.connection() as conn:
        row = conn.execute(
            "update stage1_jobs set status = 'FAILED', error = %s, result = coalesce(%s, result), "
            "completed_at = now(), updated_at = now(), lease_owner = null, lease_expires_at = null "
            f"where job_id = %s and {cond} returning job_id",
            (*params, owner) if owner is not None else params,
        ).fetchone()
    return row is not None


def begin_commit(job_id: str, owner: str) -> bool:
    """Mark a RUNNING job of this owner as committing: from here its work makes its result visible
    (an import's copy into its target) and can no longer be undone, so `cancel` refuses it (409)
    instead of answering CANCELLED over rows that stay. False if the job is no longer ours
    (cancelled a moment before, or reclaimed): the caller must stop without committing."""
    with db.connection() as conn:
        row = conn.execute(
            "update stage1_jobs set payload = payload || '{\"committing\": true}'::jsonb, updated_at = now() "
            "where job_id = %s and status = 'RUNNING' and lease_owner = %s returning job_id",
            (job_id, owner),
        ).fetchone()
    return row is not None


def cancel(job_id: str) -> Job:
    """PENDING/RUNNING → CANCELLED. A running worker notices at its next `report_progress`.
    Cancelling a job that already finished, or one committing its result (`begin_commit`), is a 409
    naming its status."""
    job = get_job(job_id)
    with db.connection() as conn:
        done = _one(
            conn,
            "update stage1_jobs set status = 'CANCELLED', completed_at = now(), updated_at = now(), "
            "lease_owner = null, lease_expires_at = null, error = coalesce(error, 'cancelled by request') "
            "where job_id = %s and (status = 'PENDING' or (status = 'RUNNING' and not "
            f"coalesce((payload->>'committing')::boolean, false))) returning {_COLUMNS}",
            (job.job_id,),
        )
        if done is None:
            row = conn.execute("select status, payload->>'committing' as committing from stage1_jobs "
                               "where job_id = %s", (job.job_id,)).fetchone()
            status = row["status"] if row else None
            if status == CANCELLED:
                return get_job(job.job_id)  # idempotent
            if status == RUNNING:
                raise Conflict("job is committing its result and can no longer be cancelled",
                               {"status": status, "committing": True})
            raise Conflict(f"job is {status}: only PENDING or RUNNING jobs can be cancelled", {"status": status})
    return done


def retry(job_id: str) -> Job:
    """FAILED/CANCELLED → PENDING with fresh attempts (the count of past attempts is kept). The
    caller re-dispatches the job."""
    job = get_job(job_id)
    with db.connection() as conn:
        done = _one(
            conn,
            "update stage1_jobs set status = 'PENDING', error = null, result = null, progress = 0, "
            "completed_at = null, updated_at = now(), lease_owner = null, lease_expires_at = null, "
            "retry_at = null, outage_since = null, "
            f"max_attempts = attempts + %s where job_id = %s and status in ('FAILED', 'CANCELLED') "
            f"returning {_COLUMNS}",
            (RETRY_ATTEMPTS, job.job_id),
        )
        if done is None:
            status = _status(conn, job.job_id)
            raise Conflict(f"job is {status}: only FAILED or CANCELLED jobs can be retried", {"status": status})
    return done


@dataclass(frozen=True)
class SweepResult:
    requeued: list[Job]
    failed: list[Job]


def sweep(limit: int = 100) -> SweepResult:
    """Reclaim RUNNING jobs whose lease expired: back to PENDING while attempts remain (the caller
    re-dispatches them), else FAILED. Safe to run from several processes at once."""
    with db.connection() as conn:
        rows = conn.execute(
            "with expired as (select job_id from stage1_jobs where status = 'RUNNING' and lease_expires_at < now() "
            "order by lease_expires_at limit %s for update skip locked) "
            "update stage1_jobs j set "
            "status = case when j.attempts < j.max_attempts then 'PENDING' else 'FAILED' end, "
            "error = case when j.attempts < j.max_attempts then j.error else "
            "'worker lost: lease expired after ' || j.attempts || ' attempt(s)' end, "
            "completed_at = case when j.attempts < j.max_attempts then null else now() end, "
            f"lease_owner = null, lease_expires_at = null, updated_at = now() from expired "
            f"where j.job_id = expired.job_id returning {', '.join('j.' + c.strip() for c in _COLUMNS.split(','))}",
            (limit,),
        ).fetchall()
    jobs = [Job.from_row(r) for r in rows]
    return SweepResult([j for j in jobs if j.status == PENDING], [j for j in jobs if j.status == FAILED])


def stale_pending(job_type: str, older_than_seconds: int, limit: int = 100) -> list[Job]:
    """PENDING jobs of a type untouched for a while (a lost event or dispatch), oldest first: the
    sweeper looks at them again."""
    with db.connection() as conn:
        rows = conn.execute(
            f"select {_COLUMNS} from stage1_jobs where status = 'PENDING' and job_type = %s "
            # A job released after an outage waits for its backoff (retry_at), then goes at once.
            "and case when retry_at is null then updated_at < now() - make_interval(secs => %s) "
            "else retry_at <= now() end order by updated_at limit %s",
            (job_type, older_than_seconds, limit),
        ).fetchall()
    return [Job.from_row(r) for r in rows]


def touch(job_ids: list[str]) -> None:
    """Mark PENDING jobs as just dispatched (so `stale_pending` waits before trying again)."""
    if job_ids:
        with db.connection() as conn:
            conn.execute("update stage1_jobs set updated_at = now() where job_id = any(%s) and status = 'PENDING'",
                         (job_ids,))


def update_payload(conn: Connection[Any], job_id: str, patch: dict[str, Any]) -> None:
    conn.execute("update stage1_jobs set payload = payload || %s, updated_at = now() where job_id = %s",
                 (Jsonb(patch), job_id))


def release(job_id: str, owner: str, error: str, *, progressed: bool = False,
            deadline_seconds: int | None = None, max_delay_seconds: int | None = None) -> bool:
    """Give a RUNNING job back because a backing service failed mid-way: PENDING again, to be
    dispatched by the sweeper after a backoff that doubles with the outage's age (1 s, 2 s, 4 s …
    up to `max_delay_seconds`), until `deadline_seconds` after the outage began; then FAILED.
    `progressed`: this attempt got work done, so an earlier outage is over and a new one begins.
    Outage releases are bounded by time, not by `max_attempts` (which a release raises as needed)."""
    settings = get_settings()
    deadline = deadline_seconds if deadline_seconds is not None else settings.imports.import_outage_deadline_seconds
    max_delay = max_delay_seconds if max_delay_seconds is not None else settings.imports.import_retry_max_seconds
    with db.connection() as conn:
        row = conn.execute(
            "with j as (select job_id, coalesce(case when %(progressed)s then null else outage_since end, now()) "
            "as since from stage1_jobs where job_id = %(id)s and status = 'RUNNING' and lease_owner = %(owner)s "
            "for update), d as (select job_id, since, now() - since < make_interval(secs => %(deadline)s) as again "
            "from j) "
            "update stage1_jobs s set outage_since = d.since, "
            "status = case when d.again then 'PENDING' else 'FAILED' end, "
            "error = case when d.again then %(error)s else %(error)s || ' (gave up: still failing ' || "
            "round(extract(epoch from now() - d.since)) || ' s after the outage began)' end, "
            "retry_at = case when d.again then now() + make_interval(secs => least(%(max_delay)s::float8, "
            "greatest(1.0, extract(epoch from now() - d.since)::float8))) end, "
            "max_attempts = greatest(s.max_attempts, s.attempts + 1), "
            "completed_at = case when d.again then null else now() end, "
            "lease_owner = null, lease_expires_at = null, updated_at = now() "
            "from d where s.job_id = d.job_id returning s.status",
            {"id": job_id, "owner": owner, "error": clean(error[:3900]), "progressed": progressed, "deadline": deadline,
             "max_delay": max_delay},
        ).fetchone()
    return row is not None
