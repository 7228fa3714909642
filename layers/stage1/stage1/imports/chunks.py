"""Chunked uploads, the importing side (docs/imports.md, "Chunked uploads"; the bookkeeping and
API side is `stage1.uploads.chunks`).

Each chunk object's ObjectCreated event runs `import_chunk` in an invocation of its own (on AWS
the importer's reserved concurrency bounds how many run at once): the chunk is claimed (its own
lease in `stage1_upload_chunks`), its rows go over ILP into the job's staging table — a WAL table
with DEDUP UPSERT KEYS, so a re-delivered event or a retried chunk upserts the same rows — and the
chunk is marked IMPORTED. Under the upload row's lock the invocation that marks the LAST chunk
claims the job's commit (`jobs.claim_for_commit`) and runs the one commit phase of every import
(`service.commit_staging`: staging → target in one INSERT ... SELECT, dataset row and version)
through the job worker, so exactly one invocation commits and its outcome is decided as for any job.

A chunk's failure is classified as the importer's are: the file's fault (a bad value, a limit, an
object of another size than declared) FAILS the job with a message naming the chunk and drops the
staging table, after which later events of that upload are ignored; a backing service that does not
answer releases the chunk (PENDING again; the sweeper re-dispatches it, at most
`upload_chunk_max_attempts` imports of one chunk).
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
from psycopg.types.json import Jsonb

from stage1.core import db
from stage1.core.errors import ServiceUnavailable, service_of
from stage1.core.logging import get_logger, job_id_var, log_fields
from stage1.core.questdb import get_questdb, ident
from stage1.core.settings import get_settings
from stage1.imports.errors import ImportFailed
from stage1.imports.result import ImportFailure, ImportResult
from stage1.imports.service import (
    Loaded,
    _claim_tables,
    _staging,
    _target_owner,
    commit_staging,
    load,
    object_source,
)
from stage1.jobs import service as jobs
from stage1.jobs import worker
from stage1.jobs.service import Job, JobAborted
from stage1.jobs.worker import Lease
from stage1.timeseries import ownership as own
from stage1.timeseries.kinds import Kind, drop_table, ensure_table
from stage1.uploads import chunks as chunked

log = get_logger("imports.chunks")


def _upload(upload_id: str) -> dict[str, Any] | None:
    with db.connection() as conn:
        row = conn.execute("select * from stage1_uploads where upload_id = %s and chunks is not null",
                           (upload_id,)).fetchone()
    return None if row is None else {**row, "upload_id": str(row["upload_id"]), "job_id": str(row["job_id"])}


def _arrived(upload_id: str, index: int) -> dict[str, Any] | None:
    """The chunk's row, its object recorded as in the bucket (for status and resume)."""
    with db.connection() as conn:
        return conn.execute("update stage1_upload_chunks set arrived_at = coalesce(arrived_at, now()) "
                            "where upload_id = %s and index = %s returning *", (upload_id, index)).fetchone()


def _claim(upload_id: str, index: int, owner: str, job_id: str) -> dict[str, Any] | None:
    """The chunk for this invocation (PENDING, or IMPORTING under an expired lease), and the job
    RUNNING; None if another invocation has it or it is done."""
    lease = get_settings().jobs.job_lease_seconds
    with db.connection() as conn:
        row = conn.execute(
            "update stage1_upload_chunks set state = 'IMPORTING', lease_owner = %s, "
            "lease_expires_at = now() + make_interval(secs => %s), attempts = attempts + 1, updated_at = now() "
            "where upload_id = %s and index = %s and (state = 'PENDING' or (state = 'IMPORTING' and "
            "lease_expires_at < now())) returning *", (owner, lease, upload_id, index)).fetchone()
        if row is not None:
            jobs.start_chunks(conn, job_id)
    return row


def _release(upload_id: str, index: int, owner: str, error: str | None) -> None:
    """The chunk back to PENDING (its object is there): the sweeper dispatches it again."""
    with db.connection() as conn:
        conn.execute("update stage1_upload_chunks set state = 'PENDING', lease_owner = null, lease_expires_at = null, "
                     "error = %s, updated_at = now() where upload_id = %s and index = %s and lease_owner = %s "
                     "and state = 'IMPORTING'", (jobs.clean(error) if error else None, upload_id, index, owner))


class _ChunkProgress:
    """import_file's progress callback for one chunk: the chunk's rows and lease, the job's progress
    (the sum over chunks; total estimated from the chunks imported so far). Raises JobAborted when
    the job was cancelled or failed, or the chunk's lease was taken over."""

    def __init__(self, up: dict[str, Any], index: int, owner: str) -> None:
        self.up, self.index, self.owner = up, index, owner
        self.rows = 0

    def __call__(self, done: int, _total: int | None = None) -> None:
        self.rows = done
        up = self.up
        with db.connection() as conn:
            mine = conn.execute(
                "update stage1_upload_chunks set rows = %s, updated_at = now(), "
                "lease_expires_at = now() + make_interval(secs => %s) where upload_id = %s and index = %s "
                "and state = 'IMPORTING' and lease_owner = %s returning index",
                (done, get_settings().jobs.job_lease_seconds, up["upload_id"], self.index, self.owner)).fetchone()
            if mine is None:
                raise JobAborted(up["job_id"], "chunk lease lost")
            progress, total = _sums(conn, up)
            stopped = jobs.chunks_progress(conn, up["job_id"], progress, total)
        if stopped is not None:
            raise JobAborted(up["job_id"], stopped)


def _sums(conn: Any, up: dict[str, Any]) -> tuple[int, int | None]:
    row = conn.execute(
        "select coalesce(sum(rows), 0) as rows, sum(rows) filter (where state = 'IMPORTED') as done_rows, "
        "sum(size) filter (where state = 'IMPORTED') as done_bytes from stage1_upload_chunks where upload_id = %s",
        (up["upload_id"],)).fetchone()
    rows = int(row["rows"])
    total = None
    if row["done_bytes"]:
        total = max(rows, int(int(row["done_rows"]) * int(up["size"]) / int(row["done_bytes"])))
    return rows, total


def _ensure_staging(kind: Kind, staging: str, granularity: str | None) -> None:
    """CREATE ... IF NOT EXISTS from several chunk invocations at once: a loser of that race may see
    QuestDB's "table exists"; the table being there is all that matters."""
    try:
        ensure_table(kind, staging, granularity)
    except Exception:
        if not get_questdb().table_exists(staging):
            raise


def import_chunk(bucket: str, key: str, owner: str) -> dict[str, Any]:
    """One chunk object's event (or a re-dispatch of it). Anything that is not an open chunk of an
    open chunked upload is ignored (an unknown key, a chunk index past the declared count, an upload
    already completed, failed or rejected)."""
    ref = chunked.parse_chunk_key(key)
    up = _upload(ref[0]) if ref else None
    if ref is None or up is None or not 1 <= ref[1] <= up["chunks"] or key != chunked.chunk_key(
            up["upload_id"], ref[1], up["format"]):
        log_fields(log, 20, "not a chunk of a chunked upload: ignored", key=key)
        return {"key": key, "status": "IGNORED", "reason": "unknown chunk"}
    index = ref[1]
    job = jobs.find_job(up["job_id"])
    if job is None or job.terminal or up["status"] == "REJECTED" or (job.lease_owner and job.status == jobs.RUNNING):
        return {"key": key, "status": "IGNORED", "reason": f"upload's job is {job.status if job else 'gone'}"}
    token = job_id_var.set(job.job_id)
    try:
        source = object_source(bucket, key)
        if source is None:  # an event or a re-dispatch of a chunk whose object is not there (any more)
            return {"key": key, "status": "ABSENT"}
        chunk = _arrived(up["upload_id"], index)
        assert chunk is not None  # the row exists for every index up to the count
        if source.size != int(chunk["size"]):
            _fail(job, up, index, f"chunk {index} is {source.size} bytes, not the {chunk['size']} declared: "
                                  "the upload's objects were deleted and nothing was imported",
                  {"chunk": index, "size": source.size, "declared": int(chunk["size"])}, reject=True)
            return {"key": key, "status": jobs.FAILED, "chunk": index, "error": "size mismatch"}
        if chunk["state"] == "IMPORTED":
            return {"key": key, "status": "SKIPPED", "chunk": index, "reason": "already imported"}
        if chunk["attempts"] >= get_settings().uploads.upload_chunk_max_attempts and chunk["state"] == "PENDING":
            _fail(job, up, index, f"chunk {index} gave up after {chunk['attempts']} attempts: "
                                  f"{chunk['error'] or 'no error recorded'}", {"chunk": index}, reject=False)
            return {"key": key, "status": jobs.FAILED, "chunk": index, "error": "attempts exhausted"}
        claimed = _claim(up["upload_id"], index, owner, job.job_id)
        if claimed is None:
            return {"key": key, "status": "SKIPPED", "chunk": index, "reason": "another invocation has it"}
        return _import(job, up, index, claimed, source, owner, key)
    finally:
        job_id_var.reset(token)


def _import(job: Job, up: dict[str, Any], index: int, chunk: dict[str, Any], source: Any, owner: str,
            key: str) -> dict[str, Any]:
    payload = job.payload
    kind, target = Kind(payload["kind"]), ident(payload["measurement"])
    staging, job_owner = _staging(job)
    granularity = payload.get("granularity")
    progress = _ChunkProgress(up, index, owner)
    started = time.monotonic()
    log_fields(log, 20, "chunk import started", key=key, chunk=index, of=up["chunks"], bytes=source.size,
               attempt=chunk["attempts"], staging=staging)
    try:
        _claim_tables(target, _target_owner(job), kind, staging, job_owner)
        _ensure_staging(kind, staging, granularity)
        stats = load(source, kind, staging, progress, prepare=None)
    except ImportFailed as exc:
        _fail(job, up, index, f"chunk {index} of {up['chunks']} ({key}): {exc.message}",
              {**exc.details, "chunk": index, "key": key}, reject=False)
        return {"key": key, "status": jobs.FAILED, "chunk": index, "error": exc.message[:300]}
    except JobAborted as exc:
        _release(up["upload_id"], index, owner, None)
        now = jobs.find_job(job.job_id)
        if now is not None and now.status in (jobs.FAILED, jobs.CANCELLED):
            _drop_stopped(job)
            chunked.reset_after_stop(up["upload_id"])
        return {"key": key, "status": now.status if now else "GONE", "chunk": index, "reason": str(exc.status)}
    except Exception as exc:
        service = exc.service if isinstance(exc, ServiceUnavailable) else service_of(exc)
        if service is None:
            log.exception("chunk import crashed")
            _fail(job, up, index, f"chunk {index}: internal error: {type(exc).__name__}: {str(exc)[:300]}",
                  {"chunk": index}, reject=False)
            return {"key": key, "status": jobs.FAILED, "chunk": index}
        _release(up["upload_id"], index, owner, f"{service} unavailable: {str(exc)[:300]}")
        log_fields(log, 30, "chunk released (backing service down)", chunk=index, service=service,
                   error=str(exc)[:300])
        return {"key": key, "status": "RELEASED", "chunk": index, "service": service}
    commit = _finish(up, index, owner, stats)
    log_fields(log, 20, "chunk imported", chunk=index, rows=stats.rows, seconds=round(time.monotonic() - started, 3),
               last=commit is not None)
    out: dict[str, Any] = {"key": key, "status": "IMPORTED", "chunk": index, "rows": stats.rows}
    if commit is not None:
        out["job"] = worker.answer(worker.run_claimed(commit, CommitWork(owner), owner))
    return out


def _finish(up: dict[str, Any], index: int, owner: str, stats: Any) -> Job | None:
    """The chunk IMPORTED; if it was the last one, the job's commit claimed for this invocation (one
    transaction under the upload row's lock, so of two chunks finishing at once exactly one sees
    none left)."""
    with db.connection() as conn:
        conn.execute("select 1 from stage1_uploads where upload_id = %s for update", (up["upload_id"],))
        mine = conn.execute(
            "update stage1_upload_chunks set state = 'IMPORTED', rows = %s, first_ts = %s, last_ts = %s, columns = %s, "
            "format = %s, error = null, lease_owner = null, lease_expires_at = null, updated_at = now() "
            "where upload_id = %s and index = %s and state = 'IMPORTING' and lease_owner = %s returning index",
            (stats.rows, stats.first_ts, stats.last_ts, Jsonb(stats.columns), stats.format, up["upload_id"], index,
             owner)).fetchone()
        if mine is None:  # our lease was taken over meanwhile: the other invocation finishes the chunk
            return None
        left = conn.execute("select count(*) as n from stage1_upload_chunks where upload_id = %s "
                            "and state <> 'IMPORTED'", (up["upload_id"],)).fetchone()["n"]
        progress, total = _sums(conn, up)
        jobs.chunks_progress(conn, up["job_id"], progress, total if left else progress)
        if left:
            return None
        return jobs.claim_for_commit(conn, up["job_id"], owner)


def _fail(job: Job, up: dict[str, Any], index: int, message: str, details: dict[str, Any], *, reject: bool) -> None:
    """The job FAILED because of chunk `index` (the file's fault): the chunk FAILED with the message,
    the staging table dropped, no chunk counted as imported. `reject`: the object was not what was
    declared: the upload is REJECTED and its objects deleted (as a single upload's would be)."""
    with db.connection() as conn:
        conn.execute("update stage1_upload_chunks set state = 'FAILED', error = %s, lease_owner = null, "
                     "lease_expires_at = null, updated_at = now() where upload_id = %s and index = %s",
                     (jobs.clean(message[:2000]), up["upload_id"], index))
        if reject:
            conn.execute("update stage1_uploads set status = 'REJECTED', updated_at = now() where upload_id = %s",
                         (up["upload_id"],))
    failure = ImportFailure(error_details={**details, "rows_committed": 0, "staging_dropped": True},
                            measurement=job.payload["measurement"])
    jobs.fail(job.job_id, None, message, result=msgspec.to_builtins(failure))
    _drop_stopped(job)
    chunked.reset_after_stop(up["upload_id"])
    if reject:
        chunked.delete_objects(up["upload_id"])
    log_fields(log, 30, "chunked upload failed", chunk=index, error=message[:300])


def _drop_stopped(job: Job) -> None:
    """The staging table of a job that failed or was cancelled, dropped by every chunk invocation
    that sees it stopped: one still sending when another dropped the table (and released its
    registration) has its rows auto-create the table again over ILP, unregistered — so the table
    of this job's own name goes unless another record holds it. Never raises."""
    staging, owner = _staging(job)
    try:
        with db.connection() as conn:
            reg = own.owner_of(conn, staging)
        if reg is not None and reg.owner != owner:
            return
        drop_table(staging)
        if reg is not None:
            with db.connection() as conn:
                own.release(conn, owner, [staging])
    except Exception as exc:
        log_fields(log, 30, "staging table not dropped (the sweeper will)", table=staging, error=str(exc)[:300])


# ---------------------------------------------------------------- the commit, once
class CommitWork:
    """The commit phase of a chunked upload's job, run by the job worker once every chunk is in
    the staging table (`worker.run_claimed`, or `run_job` when the sweeper re-dispatches a job whose
    committing invocation died: the copy is idempotent, DEDUP keeps one copy)."""

    prefix = "importer"
    heartbeat_seconds = None

    def __init__(self, owner: str) -> None:
        self.owner = owner

    def before_claim(self, job: Job) -> worker.Outcome | None:
        up = chunked.upload_of_job(job.job_id)
        if up is None:
            raise worker.JobFailed("the chunked upload of this job is gone", summary="upload gone")
        if _failed_chunks(up["upload_id"]):
            # A PENDING job with a FAILED chunk was retried (POST /api/jobs/{id}/retry): every chunk
            # is imported again (the staging table was dropped when it failed).
            _retry_failed(up)
        if not chunked.all_imported(up["upload_id"]):
            # Not every chunk is in: start the ones that are (one invocation each); the last commits.
            waiting = chunked.notice_arrivals(up)
            how = start_chunks(up, waiting, self.owner)
            now = jobs.find_job(job.job_id) or job
            return worker.Outcome(job_id=job.job_id, status=now.status, reason=f"{len(waiting)} chunk(s) {how}")
        return None

    def stopped(self, job: Job, why: str) -> None:
        if why in (worker.FAILED, worker.CANCELLED):
            _drop_stopped(job)
            if (up := chunked.upload_of_job(job.job_id)) is not None:
                chunked.reset_after_stop(up["upload_id"])

    def run(self, job: Job, lease: Lease) -> ImportResult:
        up = chunked.upload_of_job(job.job_id)
        assert up is not None
        with db.connection() as conn:
            rows = conn.execute("select rows, first_ts, last_ts, columns, format from stage1_upload_chunks "
                                "where upload_id = %s order by index", (up["upload_id"],)).fetchall()
        columns: list[str] = []
        for r in rows:
            columns += [c for c in (r["columns"] or []) if c not in columns]
        firsts = [r["first_ts"] for r in rows if r["first_ts"] is not None]
        lasts = [r["last_ts"] for r in rows if r["last_ts"] is not None]
        loaded = Loaded(rows[0]["format"] or up["format"], sum(int(r["rows"]) for r in rows),
                        min(firsts, default=None), max(lasts, default=None), columns or None, int(up["size"]))
        since = job.started_at or datetime.now(UTC)
        started = time.monotonic() - max(0.0, (datetime.now(UTC) - since).total_seconds())
        try:
            result = commit_staging(job, lease, loaded, started)
            result.chunks = len(rows)
        except ImportFailed as exc:
            details = {**exc.details, "rows_committed": 0, "staging_dropped": True}
            failure = ImportFailure(error_details=details, measurement=job.payload["measurement"])
            raise worker.JobFailed(exc.message, result=msgspec.to_builtins(failure), details=details) from exc
        with db.connection() as conn:  # done in time: the sweeper's expiry has nothing to clean
            conn.execute("update stage1_uploads set expires_at = null, status = 'UPLOADED', updated_at = now() "
                         "where upload_id = %s", (up["upload_id"],))
        return result


def _failed_chunks(upload_id: str) -> bool:
    with db.connection() as conn:
        return conn.execute("select 1 from stage1_upload_chunks where upload_id = %s and state = 'FAILED' limit 1",
                            (upload_id,)).fetchone() is not None


def _retry_failed(up: dict[str, Any]) -> None:
    with db.connection() as conn:
        conn.execute("update stage1_upload_chunks set state = 'PENDING', rows = 0, attempts = 0, error = null, "
                     "updated_at = now() where upload_id = %s and state = 'FAILED'", (up["upload_id"],))


def start_chunks(up: dict[str, Any], indices: list[int], owner: str) -> str:
    """Import chunks that are in the bucket: one importer invocation each (fan-out), or — where this
    process cannot invoke the importer (the importer itself on AWS: its own name is not in its
    environment, a template !Ref to itself would be a cycle) — here, one after the other."""
    try:
        chunked.dispatch_chunks(up, indices)
        return "dispatched"
    except ServiceUnavailable:
        bucket = get_settings().store.bucket
        for index in indices:
            import_chunk(bucket, chunked.chunk_key(up["upload_id"], index, up["format"]), owner)
        return "imported here"


def run_chunked_job(job_id: str, owner: str | None) -> dict[str, Any]:
    """A dispatched job event ({"job_id"}) for a chunked upload (the sweeper, the nudge, a retry).
    A PENDING job goes through the job worker (`CommitWork.before_claim` starts the chunks that are
    in, or lets it commit); a job RUNNING without a lease (chunks importing) whose chunks are all in
    never committed (its last invocation died between the two): its commit is claimed here."""
    owner = owner or f"importer-{uuid.uuid4().hex[:12]}"
    job = jobs.find_job(job_id)
    if job is None or not (job.status == jobs.RUNNING and job.lease_owner is None):
        return worker.answer(worker.run_job(job_id, CommitWork(owner), owner))
    up = chunked.upload_of_job(job.job_id)
    if up is None:
        return {"job_id": job.job_id, "status": job.status, "skipped": True}
    if not chunked.all_imported(up["upload_id"]):
        waiting = chunked.notice_arrivals(up)
        return {"job_id": job.job_id, "status": job.status, "chunks": len(waiting),
                "how": start_chunks(up, waiting, owner)}
    with db.connection() as conn:
        conn.execute("select 1 from stage1_uploads where upload_id = %s for update", (up["upload_id"],))
        claimed = jobs.claim_for_commit(conn, job.job_id, owner)
    if claimed is None:
        return {"job_id": job.job_id, "status": job.status, "skipped": True}
    return worker.answer(worker.run_claimed(claimed, CommitWork(owner), owner))
