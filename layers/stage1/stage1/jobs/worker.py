"""The one job worker: every function that runs jobs (ImporterFunction, ExporterFunction) runs them
through `run_job`, which owns the job's state from claim to finish; the work itself (`Work`) never
touches the jobs table. In order:

1. `Work.before_claim(job)`: checks on the PENDING job before it is claimed (is the input there?).
   It may answer an `Outcome` (the job stays as it is, e.g. PENDING until its object arrives) or
   raise `JobFailed` (the job is FAILED without ever running).
2. `claim` (PENDING → RUNNING, a lease for this owner); a job that is not PENDING is skipped, so
   duplicate events and nudges are harmless.
3. `Work.run(job, lease)` does the work. It calls `lease.progress(n, total)` as it goes (records
   progress and renews the lease) and `lease.beat()` while it waits; both raise `JobAborted` once
   the job was cancelled or the lease taken over, so the work stops at its next report. Work that
   may be silent for long (a query slow to its first byte) sets `heartbeat_seconds`: a thread then
   renews the lease meanwhile and `lease.check()` raises what it found.
4. The outcome, decided here alone:
   - the work returned its result (a msgspec Struct): COMPLETED with it (encoded to JSON, same keys)
     and the last progress; a lease that was lost meanwhile writes nothing (logged);
   - `JobFailed` (the input or the request is wrong): FAILED with its message;
   - an error whose backing service does not answer (`ServiceUnavailable`, or `service_of`
     recognising a driver's connection error): released with backoff (`jobs.service.release`:
     retried until the outage deadline, then FAILED);
   - anything else: FAILED as an internal error;
   - `JobAborted`: nothing written (cancelled, or someone else holds the job now).
   `Work.stopped(why)` is the work's cleanup hook on every way out but success: why is
   "failed", "cancelled", "released" or "lost".
"""

from __future__ import annotations

import threading
import uuid
from typing import Any, ClassVar, Protocol

import msgspec

from stage1.core import db
from stage1.core.errors import ServiceUnavailable, service_of
from stage1.core.logging import get_logger, job_id_var, log_fields
from stage1.jobs import service as jobs
from stage1.jobs.service import Job, JobAborted

log = get_logger("jobs.worker")

FAILED, CANCELLED, RELEASED, LOST = "failed", "cancelled", "released", "lost"


class JobFailed(Exception):  # noqa: N818 - an outcome, named like the job status it leads to
    """A permanent failure: the job is FAILED with `message` (and `result`, JSON, if given). `summary`
    is the short error in the worker's answer (default: the message); `details` go in it too."""

    def __init__(self, message: str, *, result: Any = None, details: dict[str, Any] | None = None,
                 summary: str | None = None) -> None:
        super().__init__(message)
        self.message, self.result, self.details, self.summary = message, result, details, summary


class Outcome(msgspec.Struct, omit_defaults=True):
    """What a worker invocation did (the handler's answer; the job row is the real outcome)."""

    job_id: str
    status: str
    result: Any = None
    error: str | None = None
    details: dict[str, Any] | None = None
    service: str | None = None
    reason: str | None = None
    skipped: bool = False


class Lease:
    """The running job as its work sees it: report progress, keep the lease, notice an abort."""

    def __init__(self, job: Job, owner: str) -> None:
        self.job, self.owner = job, owner
        self.progressed = 0
        self._error: BaseException | None = None
        self._stop = threading.Event()

    def progress(self, done: int, total: int | None = None) -> None:
        self.progressed = done
        jobs.report_progress(self.job.job_id, self.owner, done, total)

    def count(self, done: int) -> None:
        """Progress to report at the next beat (and to complete with), without a database call."""
        self.progressed = done

    def beat(self) -> None:
        jobs.report_progress(self.job.job_id, self.owner, self.progressed)

    def begin_commit(self) -> None:
        """The point of no return: after this a cancel is refused (409). Raises `JobAborted` if the
        job was cancelled or reclaimed before it, so nothing is committed."""
        if not jobs.begin_commit(self.job.job_id, self.owner):
            now = jobs.find_job(self.job.job_id)
            raise JobAborted(self.job.job_id, now.status if now else None)

    def check(self) -> None:
        if self._error is not None:
            raise self._error

    def keep_alive(self, every: float) -> threading.Thread:
        """Renew the lease every `every` seconds on a thread until the work ends; an abort or a
        database error found there is raised by the next `check()`."""
        def loop() -> None:
            while not self._stop.wait(every):
                try:
                    self.beat()
                except BaseException as exc:  # JobAborted, or the database gone: the work's next check decides
                    self._error = exc
                    return
        thread = threading.Thread(target=loop, name=f"lease-{self.job.job_id[:8]}", daemon=True)
        thread.start()
        return thread

    def release_thread(self, thread: threading.Thread | None) -> None:
        self._stop.set()
        if thread is not None:
            thread.join()


class Work(Protocol):
    """One job's own work; see the module docstring for when each method is called."""

    prefix: ClassVar[str]  # names the worker when no owner is given, e.g. "importer"
    heartbeat_seconds: ClassVar[float | None]

    def before_claim(self, job: Job) -> Outcome | None: ...
    def run(self, job: Job, lease: Lease) -> msgspec.Struct: ...
    def stopped(self, job: Job, why: str) -> None: ...


def run_job(job_id: str, work: Work, owner: str | None = None, *, note: dict[str, Any] | None = None) -> Outcome:
    """Run one job (see the module docstring). `note`: facts about its input merged into the job's
    payload first, e.g. `{"ready": True}` when an S3 event says its object arrived."""
    owner = owner or f"{work.prefix}-{uuid.uuid4().hex[:12]}"
    if note and (jid := jobs.parse_id(job_id)) is not None:
        with db.connection() as conn:
            jobs.update_payload(conn, jid, note)
    job = jobs.find_job(job_id)
    if job is None:
        return Outcome(job_id=job_id, status="UNKNOWN")
    if job.status != jobs.PENDING:
        return Outcome(job_id=job.job_id, status=job.status, skipped=True)
    token = job_id_var.set(job.job_id)
    try:
        try:
            early = work.before_claim(job)
        except JobFailed as exc:
            jobs.fail(job.job_id, None, exc.message, result=exc.result)
            return Outcome(job_id=job.job_id, status=jobs.FAILED, error=exc.summary or exc.message, details=exc.details)
        if early is not None:
            return early
        claimed = jobs.claim(job.job_id, owner)
        if claimed is None:
            log_fields(log, 20, "job not claimable; skipped", job_id=job.job_id)
            return Outcome(job_id=job.job_id, status=(jobs.find_job(job.job_id) or job).status, skipped=True)
        return _run(claimed, owner, work)
    finally:
        job_id_var.reset(token)


def run_claimed(job: Job, work: Work, owner: str) -> Outcome:
    """Run a job this owner has claimed already (a chunked upload's commit, claimed under the
    upload's lock by the invocation that imported its last chunk): steps 3 and 4 above."""
    token = job_id_var.set(job.job_id)
    try:
        return _run(job, owner, work)
    finally:
        job_id_var.reset(token)


def _run(job: Job, owner: str, work: Work) -> Outcome:
    lease = Lease(job, owner)
    thread = None
    try:
        try:
            thread = lease.keep_alive(work.heartbeat_seconds) if work.heartbeat_seconds else None
            result = work.run(job, lease)
        finally:
            lease.release_thread(thread)
    except JobAborted as exc:
        log_fields(log, 20, "job stopped", status=exc.status)
        _stopped(work, job, CANCELLED if exc.status == jobs.CANCELLED else LOST)
        return Outcome(job_id=job.job_id, status=exc.status or "GONE")
    except JobFailed as exc:
        _stopped(work, job, FAILED)
        jobs.fail(job.job_id, owner, exc.message, result=exc.result)
        log_fields(log, 30, "job failed", error=exc.message[:300])
        return Outcome(job_id=job.job_id, status=jobs.FAILED, error=exc.summary or exc.message, details=exc.details)
    except Exception as exc:
        service = exc.service if isinstance(exc, ServiceUnavailable) else service_of(exc)
        if service is not None:
            # A backing service is down: give the job back with backoff; the sweeper dispatches it again.
            _stopped(work, job, RELEASED)
            text = str(exc)[:300]
            # ServiceUnavailable's text already names the service ("questdb unavailable: ...").
            reason = text if text.startswith(f"{service} unavailable") else f"{service} unavailable: {text}"
            jobs.release(job.job_id, owner, reason, progressed=lease.progressed > 0)
            log_fields(log, 30, "job interrupted; released", service=service, error=str(exc)[:300])
            return Outcome(job_id=job.job_id, status=jobs.PENDING, service=service, error=str(exc)[:300])
        log.exception("job crashed")
        _stopped(work, job, FAILED)
        jobs.fail(job.job_id, owner, f"internal error: {type(exc).__name__}: {str(exc)[:300]}")
        return Outcome(job_id=job.job_id, status=jobs.FAILED)
    data = msgspec.to_builtins(result)
    if not jobs.complete(job.job_id, owner, data, progress=lease.progressed):
        # The work is done but the job is no longer ours (cancelled, or the lease was taken over):
        # nothing is written; the answer still says what this invocation did.
        log_fields(log, 30, "job was taken from us before it completed", job_id=job.job_id)
    return Outcome(job_id=job.job_id, status=jobs.COMPLETED, result=data)


def _stopped(work: Work, job: Job, why: str) -> None:
    """The cleanup hook never changes the outcome: its own failure is logged."""
    try:
        work.stopped(job, why)
    except Exception as exc:
        log_fields(log, 30, "cleanup after the job stopped failed", why=why, error=str(exc)[:300])


def answer(outcome: Outcome) -> dict[str, Any]:
    """The outcome as the handler's JSON answer."""
    return msgspec.to_builtins(outcome)


def decode_outcome(answer: Any) -> Outcome | None:
    """A worker's answer (e.g. from `dispatch.invoke_sync`) as an Outcome, or None if it is not one."""
    try:
        return msgspec.convert(answer, Outcome)
    except msgspec.ValidationError:
        return None


