"""Export jobs: create and dispatch one (API side), and run one (the ExporterFunction worker)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from stage1.core import db
from stage1.core.errors import HttpError, ServiceUnavailable, Stage1Error
from stage1.core.logging import get_logger, job_id_var, log_fields
from stage1.core.questdb import QuestDBError
from stage1.core.settings import get_settings
from stage1.core.storage import get_s3
from stage1.exports.multipart import MultipartWriter
from stage1.exports.schemas import ExportResult
from stage1.exports.stream import MEDIA_TYPES, Format, csv_safe, exp_params, open_sync
from stage1.jobs.schemas import JobAccepted
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
    from stage1.jobs.dispatch import invoke_async
    from stage1.jobs.service import create_job, fail

    with db.connection() as conn:
        job = create_job(conn, JOB_TYPE, payload)
    try:
        invoke_async(FUNCTION, {"job_id": job.job_id, "job_type": JOB_TYPE})
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


class _Heartbeat:
    """Reports progress every few seconds from its own thread, which also renews the job's lease, so
    a query that is slow to produce its first byte keeps its job. When the job was cancelled or its
    lease reclaimed, `check()` raises `JobAborted` in the worker at its next piece."""

    def __init__(self, report: Callable[[], None], every: float = PROGRESS_EVERY_SECONDS) -> None:
        self._report, self._every = report, every
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="export-heartbeat", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self._report()
            except BaseException as exc:  # JobAborted, or the database gone: the worker decides
                self._error = exc
                return

    def check(self) -> None:
        if self._error is not None:
            raise self._error

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def presign(key: str, filename: str, expires: int) -> str:
    return get_s3().generate_presigned_url(
        "get_object",
        Params={"Bucket": get_settings().store.bucket, "Key": key,
                "ResponseContentDisposition": f'attachment; filename="{filename}"'},
        ExpiresIn=expires,
    )


def run_export_job(job_id: str, owner: str) -> str:
    """Claim and run one export job. Returns what happened (for logs): skipped, completed, failed,
    aborted. Transient failures (QuestDB or the store down) propagate with the job left RUNNING, so
    the sweeper hands it out again when its lease expires (attempts are bounded)."""
    from stage1.jobs.service import JobAborted, claim, complete, fail, report_progress

    settings = get_settings()
    job = claim(job_id, owner)
    if job is None:
        log_fields(log, 20, "export job not claimable; skipped", job_id=job_id)
        return "skipped"
    token = job_id_var.set(job.job_id)
    try:
        payload = job.payload
        fmt: Format = "parquet" if payload.get("format") == "parquet" else "csv"
        filename = safe_filename(payload.get("filename"), fmt)
        # Bounded by the worker's own deadline whatever the payload says (ExporterFunction: 900 s).
        timeout = min(float(payload.get("timeout") or settings.exports.export_job_timeout),
                      settings.exports.export_job_max_timeout)
        key = f"exports/{job.job_id}/{filename}"
        started = time.monotonic()
        writer = MultipartWriter(settings.store.bucket, key, content_type=MEDIA_TYPES[fmt],
                                 part_bytes=settings.exports.export_part_bytes)
        lines = [0]
        heartbeat = _Heartbeat(lambda: report_progress(job.job_id, owner, max(0, lines[0] - 1)))
        try:
            with heartbeat, _pieces(payload, fmt, timeout) as pieces:
                for piece in pieces:
                    heartbeat.check()
                    writer.write(piece)
                    if fmt == "csv":
                        lines[0] += piece.count(b"\n")
            heartbeat.check()
            writer.complete()
        except JobAborted:
            writer.abort()
            return "aborted"
        except QuestDBError as exc:
            writer.abort()
            fail(job.job_id, owner, f"questdb rejected the query: {exc.questdb_message}",
                 result={"questdb": exc.questdb_message, "position": (exc.details or {}).get("position")})
            return "failed"
        except NotReadOnly as exc:
            writer.abort()
            fail(job.job_id, owner, f"not a read-only query: {exc.reason}")
            return "failed"
        except ServiceUnavailable:
            writer.abort()
            raise
        except HttpError as exc:  # the export timed out
            writer.abort()
            fail(job.job_id, owner, f"{exc.message} after {timeout:g} s")
            return "failed"
        except Stage1Error as exc:  # the reader refused (404, 409, 400): final, not transient
            writer.abort()
            if exc.status_code >= 500:
                raise
            fail(job.job_id, owner, exc.message, result={"status": exc.status_code, "details": exc.details})
            return "failed"
        except BaseException:
            writer.abort()
            raise

        expires = settings.exports.export_url_expires_seconds
        rows = max(0, lines[0] - 1) if fmt == "csv" else None
        result = ExportResult(
            url=presign(key, filename, expires),
            expires_at=(datetime.now(UTC) + timedelta(seconds=expires)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            bucket=settings.store.bucket, key=key, format=fmt, filename=filename, bytes=writer.bytes, rows=rows,
            content_type=MEDIA_TYPES[fmt],
        )
        complete(job.job_id, owner, msgspec.to_builtins(result), progress=rows if rows is not None else None)
        log_fields(log, 20, "export job completed", bytes=writer.bytes, rows=rows,
                   seconds=round(time.monotonic() - started, 3))
        return "completed"
    finally:
        job_id_var.reset(token)
