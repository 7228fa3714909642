"""Export jobs: create and dispatch one (API side), and run one (the ExporterFunction worker)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from stage1.core import db
from stage1.core.errors import HttpError, ServiceUnavailable, Stage1Error
from stage1.core.logging import get_logger, log_fields
from stage1.core.questdb import QuestDBError
from stage1.core.settings import get_settings
from stage1.core.storage import get_s3
from stage1.exports.multipart import MultipartWriter
from stage1.exports.schemas import ExportResult
from stage1.exports.stream import MEDIA_TYPES, Format, csv_safe, exp_params, open_sync
from stage1.jobs import worker
from stage1.jobs.schemas import JobAccepted
from stage1.jobs.service import COMPLETED, FAILED, PENDING, Job
from stage1.jobs.worker import JobFailed, Lease, Outcome
from stage1.sql.readonly import NotReadOnly, check_readonly

log = get_logger("exports")

JOB_TYPE = "export"
FUNCTION = "ExporterFunction"
EXTENSIONS = {"csv": ".csv", "parquet": ".parquet"}
_FILENAME_RE = re.compile(r"[^A-Za-z0-9._-]+")
PROGRESS_EVERY_SECONDS = 5.0


def safe_filename(name: str | None, fmt: Format, default: str = "export") -> str:
    """A download name from [A-Za-z0-9._-] with the format's extension."""
    base = _FILENAME_RE.sub("_", (name or "").strip()).strip("._")[:100] or default
    ext = EXTENSIONS[fmt]
    return base if base.lower().endswith(ext) else base + ext


def start_export_job(sql: str, fmt: Format, *, timeout: float, filename: str,
                     source: dict[str, Any] | None = None, reason: str = "requested",
                     checked: bool = False) -> JobAccepted:
    """A PENDING export job, committed, then dispatched to the ExporterFunction. Unless QuestDB has
    already accepted the statement (`checked`), it is compiled first, so a bad query is a 400 now."""
    from stage1.sql.service import preflight

    statement = check_readonly(sql).sql
    exp_params(statement, fmt)  # too long for /exp: a 400 now, not a failed job later
    if not checked:
        preflight(statement)
    payload = {"function": FUNCTION, "sql": statement, "format": fmt, "timeout": timeout, "filename": filename,
               "source": source or {}}
    return _start(payload, reason)


def start_reader_job(reader: str, args: dict[str, Any], *, filename: str, reason: str = "requested") -> JobAccepted:
    """An export job that runs a resource reader (`stage1.exports.readers`) again for its CSV."""
    from stage1.exports.readers import READERS

    if reader not in READERS:
        raise ValueError(f"unknown reader {reader!r}")
    payload = {"function": FUNCTION, "reader": reader, "args": {**args, "fmt": "csv"}, "format": "csv",
               "filename": filename, "timeout": get_settings().exports.export_job_timeout}
    return _start(payload, reason)


def _start(payload: dict[str, Any], reason: str) -> JobAccepted:
    """Create the export job and start its worker; a job whose worker cannot start is failed at once."""
    from stage1.jobs.dispatch import dispatch_job
    from stage1.jobs.service import create_job, fail

    with db.connection() as conn:
        job = create_job(conn, JOB_TYPE, payload)
    try:
        dispatch_job(job)  # payload["function"] names the ExporterFunction
    except Exception as exc:
        fail(job.job_id, None, f"could not start the export: {exc}")
        raise
    return _accepted(job, reason)


def _accepted(job: Any, reason: str) -> JobAccepted:
    why = "the result is large" if reason == "large" else "an export job was requested"
    return JobAccepted(job_id=job.job_id, status=job.status, poll_url=f"/api/jobs/{job.job_id}",
                       message=f"{why}: it is being written to the object store; poll poll_url, the download URL "
                               f"will be in result.url")


@contextmanager
def _pieces(payload: dict[str, Any], fmt: Format, timeout: float) -> Iterator[Iterator[bytes]]:
    """The bytes of a job: a resource reader's CSV, or a read-only statement through /exp."""
    reader = payload.get("reader")
    if reader:
        from stage1.exports.readers import READERS, close_chunks, read_csv

        if reader not in READERS:
            raise NotReadOnly(f"unknown reader {str(reader)[:40]}")
        body = read_csv(str(reader), dict(payload.get("args") or {}))
        try:
            yield body.chunks
        finally:
            close_chunks(body.chunks)
        return
    statement = check_readonly(str(payload.get("sql", ""))).sql
    with open_sync(statement, fmt, timeout) as pieces:
        yield csv_safe(pieces, fmt)


def presign(key: str, filename: str, expires: int) -> str:
    return get_s3().generate_presigned_url(
        "get_object",
        Params={"Bucket": get_settings().store.bucket, "Key": key,
                "ResponseContentDisposition": f'attachment; filename="{filename}"'},
        ExpiresIn=expires,
    )



def run_export_job(job_id: str, owner: str) -> str:
    """Run one export job in the job worker (`stage1.jobs.worker`: claim, lease, outcome). Returns
    what happened, for logs: skipped, completed, failed, aborted, or released (QuestDB or the store
    down: the job is given back with backoff and the sweeper dispatches it again)."""
    outcome = worker.run_job(job_id, ExportWork(), owner)
    if outcome.skipped:
        return "skipped"
    return _WORDS.get(outcome.status, "aborted")


_WORDS = {COMPLETED: "completed", FAILED: "failed", PENDING: "released"}


class ExportWork:
    """An export job's own work: the bytes of a statement or a resource reader, written to the
    object store in parts, and a presigned URL to them. Job state is the worker's."""

    prefix = "exporter"
    # A query slow to produce its first byte keeps its job: the worker renews the lease meanwhile.
    heartbeat_seconds = PROGRESS_EVERY_SECONDS

    def __init__(self) -> None:
        self.writer: MultipartWriter | None = None

    def before_claim(self, job: Job) -> Outcome | None:
        return None

    def stopped(self, job: Job, why: str) -> None:
        if self.writer is not None:  # whatever the reason, no half-written object stays
            self.writer.abort()

    def run(self, job: Job, lease: Lease) -> ExportResult:
        settings = get_settings()
        payload = job.payload
        fmt: Format = "parquet" if payload.get("format") == "parquet" else "csv"
        filename = safe_filename(payload.get("filename"), fmt)
        # Bounded by the worker's own deadline whatever the payload says (ExporterFunction: 900 s).
        timeout = min(float(payload.get("timeout") or settings.exports.export_job_timeout),
                      settings.exports.export_job_max_timeout)
        key = f"exports/{job.job_id}/{filename}"
        started = time.monotonic()
        writer = self.writer = MultipartWriter(settings.store.bucket, key, content_type=MEDIA_TYPES[fmt],
                                               part_bytes=settings.exports.export_part_bytes)
        lines = 0
        try:
            with _pieces(payload, fmt, timeout) as pieces:
                for piece in pieces:
                    lease.check()
                    writer.write(piece)
                    if fmt == "csv":
                        lines += piece.count(b"\n")
                        lease.count(max(0, lines - 1))
            lease.check()
            writer.complete()
        except QuestDBError as exc:
            raise JobFailed(f"questdb rejected the query: {exc.questdb_message}",
                            result={"questdb": exc.questdb_message,
                                    "position": (exc.details or {}).get("position")}) from exc
        except NotReadOnly as exc:
            raise JobFailed(f"not a read-only query: {exc.reason}") from exc
        except ServiceUnavailable:
            raise
        except HttpError as exc:  # the export timed out
            raise JobFailed(f"{exc.message} after {timeout:g} s") from exc
        except Stage1Error as exc:  # the reader refused (404, 409, 400): final, not transient
            if exc.status_code >= 500:
                raise
            raise JobFailed(exc.message, result={"status": exc.status_code, "details": exc.details}) from exc

        expires = settings.exports.export_url_expires_seconds
        rows = max(0, lines - 1) if fmt == "csv" else None
        log_fields(log, 20, "export job completed", bytes=writer.bytes, rows=rows,
                   seconds=round(time.monotonic() - started, 3))
        return ExportResult(
            url=presign(key, filename, expires),
            expires_at=(datetime.now(UTC) + timedelta(seconds=expires)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            bucket=settings.store.bucket, key=key, format=fmt, filename=filename, bytes=writer.bytes, rows=rows,
            content_type=MEDIA_TYPES[fmt],
        )
