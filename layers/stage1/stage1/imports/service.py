"""The importer's work: S3 event records or a dispatched job → the job claimed, the object
streamed into QuestDB, the job (and for dataset uploads the dataset row) updated.

What a failure leaves behind: rows are committed batch by batch (one ILP/HTTP request, one
QuestDB transaction per batch). When the import fails or is cancelled and this job created the
table, the table is dropped, so nothing is left. When the table existed before, the rows already
committed stay and the job's `result.rows_committed` says how many; re-importing the corrected
file converges to one copy of each row (DEDUP UPSERT KEYS).
"""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import unquote_plus

import httpx

from stage1.core import db
from stage1.core.errors import service_of
from stage1.core.logging import get_logger, job_id_var, log_fields
from stage1.core.questdb import get_questdb, ident
from stage1.core.settings import get_settings
from stage1.imports.core import import_file, table_stats, wait_applied
from stage1.imports.errors import ImportFailed
from stage1.imports.formats import Source
from stage1.jobs import service as jobs
from stage1.timeseries.kinds import Kind, drop_table, ensure_table
from stage1.timeseries.timestamps import micros_to_unix

log = get_logger("imports.service")
JOB_TYPE = "import"

_fs: Any = None
S3_READ_BUFFER = 8 << 20


def s3_filesystem() -> Any:
    """pyarrow's native S3 client (ranged, streaming reads without the GIL); same settings as boto3."""
    global _fs
    if _fs is None:
        from pyarrow import fs

        settings = get_settings()
        kwargs: dict[str, Any] = {"region": settings.s3_region, "connect_timeout": 3, "request_timeout": 60}
        if settings.s3_endpoint:
            url = httpx.URL(settings.s3_endpoint)
            kwargs["endpoint_override"] = f"{url.host}:{url.port or (443 if url.scheme == 'https' else 80)}"
            kwargs["scheme"] = url.scheme
        if settings.s3_access_key:
            kwargs["access_key"] = settings.s3_access_key
            kwargs["secret_key"] = settings.s3_secret_key
        _fs = fs.S3FileSystem(**kwargs)
    return _fs


def object_source(bucket: str, key: str) -> Source | None:
    """The object as a random-access source, or None if it does not exist (yet)."""
    from pyarrow import fs

    path = f"{bucket}/{key}"
    info = s3_filesystem().get_file_info(path)
    if info.type != fs.FileType.File:
        return None
    # CSV is read front to back: one buffered stream (8 MiB GETs) instead of a ranged GET per block.
    return Source(lambda: s3_filesystem().open_input_file(path), int(info.size),
                  lambda: s3_filesystem().open_input_stream(path, compression=None, buffer_size=S3_READ_BUFFER))


# ---------------------------------------------------------------- events
def handle_records(records: list[dict[str, Any]], owner: str | None = None) -> list[dict[str, Any]]:
    """S3 ObjectCreated records (AWS, or MinIO's webhook payload: the same shape). Keys arrive
    URL-encoded in both. Each object names its upload, hence its job; unknown objects are ignored."""
    out = []
    for record in records:
        if not str(record.get("eventName", "")).startswith(("ObjectCreated", "s3:ObjectCreated")):
            continue
        s3 = record.get("s3") or {}
        bucket = (s3.get("bucket") or {}).get("name") or get_settings().bucket
        key = unquote_plus((s3.get("object") or {}).get("key") or "")
        job_id = mark_uploaded(bucket, key)
        if job_id is None:
            log_fields(log, 20, "object without an upload: ignored", bucket=bucket, key=key)
            out.append({"key": key, "status": "IGNORED"})
            continue
        out.append({"key": key, **run_job(job_id, owner)})
    return out


def mark_uploaded(bucket: str, key: str) -> str | None:
    """The object of an upload exists: the upload is UPLOADED and its job ready. Its job id, or None."""
    with db.connection() as conn:
        row = conn.execute(
            "update stage1_uploads set status = 'UPLOADED', updated_at = now() where object_key = %s "
            "returning job_id", (key,),
        ).fetchone()
        if row is None:
            return None
        job_id = str(row["job_id"])
        jobs.update_payload(conn, job_id, {"ready": True})
    return job_id


# ---------------------------------------------------------------- one job
def run_job(job_id: str, owner: str | None = None) -> dict[str, Any]:
    """Claim the job and run it. Idempotent: a job that is not PENDING (running elsewhere, done,
    cancelled) is left alone, so duplicate events and nudges are harmless."""
    owner = owner or f"importer-{uuid.uuid4().hex[:12]}"
    job = jobs.find_job(job_id)
    if job is None:
        return {"job_id": job_id, "status": "UNKNOWN"}
    if job.status != jobs.PENDING:
        return {"job_id": job.job_id, "status": job.status, "skipped": True}
    payload = job.payload
    source = object_source(payload["bucket"], payload["key"])
    if source is None:
        if payload.get("ready"):  # it was there (event, nudge or inline body) and is gone: never runs
            jobs.fail(job.job_id, None, f"the object {payload['key']} no longer exists")
            return {"job_id": job.job_id, "status": jobs.FAILED, "error": "object gone"}
        # Dispatched before the object arrived: stay PENDING, the event (or the sweeper) will come.
        return {"job_id": job.job_id, "status": jobs.PENDING, "reason": "object not uploaded yet"}
    if payload.get("upload_id") and source.size != payload.get("size"):
        # Whatever path brought us here (event, nudge, sweeper): an object that is not the size its
        # upload declared is deleted and its job failed, never imported.
        from stage1.uploads.service import refuse_mismatch

        error = refuse_mismatch(payload["key"], source.size)
        if error is not None:
            return {"job_id": job.job_id, "status": jobs.FAILED, "error": error}
    claimed = jobs.claim(job.job_id, owner)
    if claimed is None:
        return {"job_id": job.job_id, "status": (jobs.find_job(job.job_id) or job).status, "skipped": True}
    token = job_id_var.set(job.job_id)
    try:
        return _run(claimed, owner, source)
    finally:
        job_id_var.reset(token)


def _run(job: jobs.Job, owner: str, source: Source) -> dict[str, Any]:
    payload = job.payload
    kind, table = Kind(payload["kind"]), ident(payload["measurement"])
    settings = get_settings()
    created = bool(payload.get("created_table"))
    started = time.monotonic()
    committed = 0

    def prepare(_plan: Any) -> None:
        nonlocal created
        if not get_questdb().table_exists(table):
            ensure_table(kind, table, payload.get("granularity"))
            created = True
            with db.connection() as conn:
                jobs.update_payload(conn, job.job_id, {"created_table": True})
        else:
            ensure_table(kind, table, payload.get("granularity"))

    def progress(rows: int, total: int | None) -> None:
        nonlocal committed
        committed = rows
        jobs.report_progress(job.job_id, owner, rows, total)

    def heartbeat() -> None:
        jobs.report_progress(job.job_id, owner, committed)

    log_fields(log, 20, "import started", table=table, kind=kind.value, key=payload["key"], bytes=source.size,
               attempt=job.attempts)
    try:
        stats = import_file(source, kind, table, prepare=prepare, progress=progress,
                            senders=settings.import_senders, block_size=settings.import_block_bytes,
                            batch_rows=settings.import_batch_rows)
        applied = wait_applied(table, heartbeat=heartbeat)
        table_now = table_stats(table)
        result: dict[str, Any] = {
            "measurement": table, "kind": kind.value, "format": stats.format, "rows": stats.rows,
            "rows_written": stats.rows, "table_rows": table_now.rows, "bytes": source.size,
            "first_ts": micros_to_unix(stats.first_ts), "last_ts": micros_to_unix(stats.last_ts),
            "columns": stats.columns, "seconds": round(time.monotonic() - started, 3), "wal_applied": applied,
            "upload_id": payload.get("upload_id"),
        }
        if payload.get("dataset_id"):
            result["dataset"] = _update_dataset(payload["dataset_id"], kind, table_now)
        if not jobs.complete(job.job_id, owner, result, progress=stats.rows):
            log_fields(log, 30, "job was taken from us before it completed", job_id=job.job_id)
        log_fields(log, 20, "import completed", rows=stats.rows, seconds=result["seconds"],
                   rows_per_s=int(stats.rows / max(result["seconds"], 1e-9)))
        return {"job_id": job.job_id, "status": jobs.COMPLETED, "result": result}
    except jobs.JobAborted as exc:
        log_fields(log, 20, "import stopped", status=exc.status)
        if exc.status == jobs.CANCELLED:
            _discard(table, created, job)
        return {"job_id": job.job_id, "status": exc.status or "GONE"}
    except ImportFailed as exc:
        _discard(table, created, job)
        details = {**exc.details, "rows_committed": 0 if created else committed, "table_dropped": created}
        jobs.fail(job.job_id, owner, exc.message, result={"error_details": details, "measurement": table})
        log_fields(log, 30, "import failed", error=exc.message)
        return {"job_id": job.job_id, "status": jobs.FAILED, "error": exc.message, "details": details}
    except Exception as exc:
        service = service_of(exc)
        if service is None and type(exc).__module__.split(".")[0] in ("pyarrow", "questdb"):
            service = "questdb" if "questdb" in type(exc).__module__ else "object store"
        if service is not None:
            # A backing service is down: give the job back; the sweeper dispatches it again.
            jobs.release(job.job_id, owner, f"{service} unavailable: {str(exc)[:300]}")
            log_fields(log, 30, "import interrupted; job released", service=service, error=str(exc)[:300])
            return {"job_id": job.job_id, "status": jobs.PENDING, "service": service, "error": str(exc)[:300]}
        log.exception("import crashed")
        _discard(table, created, job)
        jobs.fail(job.job_id, owner, f"internal error: {type(exc).__name__}: {str(exc)[:300]}")
        return {"job_id": job.job_id, "status": jobs.FAILED}


def _discard(table: str, created: bool, job: jobs.Job) -> None:
    if created:
        try:
            drop_table(table)
        except Exception:
            log.exception("could not drop the table of a failed import", extra={"fields": {"table": table}})


def _update_dataset(dataset_id: str, kind: Kind, stats: Any) -> dict[str, Any]:
    prefix = "ohlcv" if kind == Kind.OHLCV else "indicator"
    values = {"rows": stats.rows, "first_ts": micros_to_unix(stats.first_ts), "last_ts": micros_to_unix(stats.last_ts)}
    with db.connection() as conn:
        conn.execute(
            f"update stage1_datasets set {prefix}_rows = %s, {prefix}_first_ts = %s, {prefix}_last_ts = %s, "  # noqa: S608 - fixed names
            "updated_at = now() where dataset_id = %s",
            (values["rows"], values["first_ts"], values["last_ts"], dataset_id),
        )
    return {"dataset_id": dataset_id, f"{prefix}_rows": values["rows"], f"{prefix}_first_ts": values["first_ts"],
            f"{prefix}_last_ts": values["last_ts"]}
