"""Uploads: the client asks, the server creates the job and hands out presigned URLs, the client
sends the file straight to the bucket; the bucket's ObjectCreated event (or the nudge of
`complete_upload`, or the sweeper) starts the importer.

Object keys are generated here (`uploads/<upload_id>/data.<ext>`), never taken from the client.
The job's idempotency key is the object (`s3://<bucket>/<key>`): one job per object.

A declaration is held to what it declared: every field is checked before anything is created
(size within `upload_max_bytes`, at most `upload_max_parts` parts of a server-chosen size), each
presigned URL accepts exactly its bytes (the POST policy's content-length-range, each part's
signed Content-Length), and an object whose real size differs from the declaration is deleted
(a multipart upload aborted), the upload REJECTED and its job FAILED, never imported.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from stage1.auth.scopes import Caller
from stage1.core import db, storage
from stage1.core.errors import BadRequest, Conflict, NotFound, PayloadTooLarge, ServiceUnavailable
from stage1.core.logging import get_logger, log_fields
from stage1.core.refs import as_uuid
from stage1.core.settings import get_settings
from stage1.core.times import iso
from stage1.datasets.lookup import find
from stage1.imports.result import ImportResult
from stage1.jobs import dispatch
from stage1.jobs import service as jobs
from stage1.jobs.schemas import JobAccepted
from stage1.jobs.worker import Outcome, decode_outcome
from stage1.timeseries.ownership import check_name
from stage1.uploads import chunks as chunked
from stage1.uploads import tables
from stage1.uploads.formats import (
    EXTENSIONS,
    STORED_CONTENT_TYPE,
    content_type_problem,
    filename_problem,
    format_from_name,
)
from stage1.uploads.schemas import (
    CompletedPart,
    CompleteRequest,
    DatasetUploadRequest,
    InlineImportResult,
    UploadCompleted,
    UploadCreated,
    UploadPart,
    UploadRequest,
    UploadStatus,
)

log = get_logger("uploads")
JOB_TYPE = "import"
PREFIX = "uploads/"
INLINE_PREFIX = "inline/"
MIN_PART = 16 * 1024**2  # S3 needs >= 5 MiB; larger parts mean fewer URLs
S3_MAX_PART = 5 * 1024**3  # S3's own limits: parts of at most 5 GiB, at most 10,000 of them
S3_MAX_PARTS = 10_000
REJECTED = "REJECTED"


def job_poll_url(job_id: str) -> str:
    return f"/api/jobs/{job_id}"


def max_parts() -> int:
    return max(1, min(get_settings().uploads.upload_max_parts, S3_MAX_PARTS))


def part_size_for(size: int) -> int:
    """The server's part size: at least 16 MiB, in whole MiB, few enough for `upload_max_parts`."""
    need = math.ceil(size / max_parts())
    return max(MIN_PART, math.ceil(need / 1024**2) * 1024**2)


def part_lengths(size: int, part_size: int) -> list[int]:
    """The exact length of each part, in order: full parts, then the remainder."""
    count = math.ceil(size / part_size)
    return [part_size] * (count - 1) + [size - (count - 1) * part_size]


def _max_upload_bytes() -> int:
    return min(get_settings().uploads.upload_max_bytes, max_parts() * S3_MAX_PART)


def _validate(filename: str, content_type: str, size: int, measurement: str | None) -> str:
    """Every field of a declaration, before anything is created (a 400 naming the field or the
    limit); the format it names."""
    limit = _max_upload_bytes()
    if size > limit:
        raise BadRequest(f"file too large for an upload: at most {limit} bytes (STAGE1_UPLOAD_MAX_BYTES)",
                         {"field": "size", "size": size, "limit": "upload_max_bytes", "max_bytes": limit})
    problem = filename_problem(filename)
    if problem:
        raise BadRequest(problem, {"field": "filename", "value": filename[:80]})
    problem = content_type_problem(content_type)
    if problem:
        raise BadRequest(problem, {"field": "content_type", "value": content_type[:80],
                                   "accepted": "text/csv, application/gzip, application/vnd.apache.parquet, "
                                               "application/vnd.apache.arrow.file|stream, application/octet-stream"})
    fmt = format_from_name(filename, content_type)
    if fmt is None:
        raise BadRequest("unknown file format: name the file .csv, .csv.gz, .parquet or .arrow",
                         {"field": "filename", "value": filename[:80]})
    if measurement is not None:
        check_name(measurement)
    return fmt


def create_upload(req: UploadRequest) -> UploadCreated:
    _validate(req.filename, req.content_type, req.size, req.measurement)
    if req.chunks is not None:
        chunked.validate(req.chunks, req.size, req.kind)
    if req.dataset_id is not None and req.kind not in ("ohlcv", "indicators"):
        raise BadRequest("a dataset upload is of kind ohlcv or indicators", {"field": "kind"})
    dataset = _dataset(req.dataset_id) if req.dataset_id is not None else None
    granularity = (dataset or {}).get("granularity") or req.granularity
    return _create(req.filename, req.content_type, req.size, req.kind, req.measurement,
                   dataset["dataset_id"] if dataset else None, granularity, req.chunks)


def create_dataset_upload(ref: str, req: DatasetUploadRequest) -> UploadCreated:
    _validate(req.filename, req.content_type, req.size, req.measurement)
    if req.chunks is not None:
        chunked.validate(req.chunks, req.size, req.kind)
    dataset = _dataset(ref)
    measurement = req.measurement or (
        dataset["ohlcv_measurement"] if req.kind == "ohlcv" else dataset["indicator_measurement"])
    return _create(req.filename, req.content_type, req.size, req.kind, measurement, dataset["dataset_id"],
                   dataset.get("granularity"), req.chunks)


_DATASET_COLUMNS = "dataset_id, dataset_slug, granularity, ohlcv_measurement, indicator_measurement"


def _dataset(ref: str) -> dict[str, Any]:
    """A dataset by UUID or slug (400 if it is neither, 404 if unknown)."""
    with db.connection() as conn:
        row = find(conn, ref, columns=_DATASET_COLUMNS)
    if row is None:
        raise NotFound("no such dataset", {"dataset_id": str(ref)[:80]})
    return {**row, "dataset_id": str(row["dataset_id"])}


def _create(filename: str, content_type: str, size: int, kind: str, measurement: str,
            dataset_id: str | None, granularity: str | None, chunks: list[int] | None = None) -> UploadCreated:
    fmt = _validate(filename, content_type, size, measurement)
    exists = tables.check_table(kind, measurement, dataset_id)
    settings = get_settings()
    s3 = storage.get_s3()
    upload_id = str(uuid.uuid4())
    key = chunked.upload_key(upload_id) if chunks else f"{PREFIX}{upload_id}/data.{EXTENSIONS[fmt]}"
    stored_type = STORED_CONTENT_TYPE[fmt]
    multipart = not chunks and size > settings.uploads.multipart_threshold_bytes
    seconds = storage.url_seconds(settings.uploads.upload_url_expires_seconds)
    expires = datetime.now(UTC) + timedelta(seconds=seconds)
    mp_id = None
    part_size = None
    if multipart:
        part_size = part_size_for(size)
        mp_id = s3.create_multipart_upload(Bucket=settings.store.bucket, Key=key, ContentType=stored_type)["UploadId"]
    payload = {"bucket": settings.store.bucket, "key": key, "upload_id": upload_id, "kind": kind,
               "measurement": measurement, "format": fmt, "dataset_id": dataset_id, "granularity": granularity,
               "size": size, "ready": False, "expires_at": iso(expires)}
    if chunks:
        payload["chunked"] = True
    with db.connection() as conn:
        job = jobs.create_job(conn, JOB_TYPE, payload, idempotency_key=f"s3://{settings.store.bucket}/{key}")
        conn.execute(
            "insert into stage1_uploads (upload_id, object_key, multipart_upload_id, part_size, kind, measurement, "
            "dataset_id, job_id, filename, format, size, content_type) "
            "values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (upload_id, key, mp_id, part_size, kind, measurement, dataset_id, job.job_id, filename[:255], fmt,
             size, content_type[:127]),
        )
        tables.claim_table(conn, upload_id, kind, measurement, dataset_id, exists)
        if chunks:
            chunked.record(conn, upload_id, chunks)
    common = {"upload_id": upload_id, "job_id": job.job_id, "expires_at": iso(expires), "object_key": key,
              "measurement": measurement, "kind": kind, "format": fmt,
              "complete_url": f"/api/uploads/{upload_id}/complete", "poll_url": job_poll_url(job.job_id)}
    if chunks:
        urls = chunked.urls(upload_id, fmt, list(enumerate(chunks, start=1)))
        return UploadCreated(url=urls[0].url, method="PUT", chunked=True, chunks=urls, chunk_count=len(chunks),
                             status_url=f"/api/uploads/{upload_id}", **common)
    if not multipart:
        post = storage.presigned_post(settings.store.bucket, key, stored_type, size, seconds)
        return UploadCreated(url=post["url"], fields=post["fields"], method="POST", **common)
    assert mp_id is not None and part_size is not None
    parts = _part_urls(key, mp_id, list(enumerate(part_lengths(size, part_size), start=1)), seconds)
    return UploadCreated(url=parts[0].url, method="PUT", multipart=True, part_size=part_size, parts=parts, **common)


def _part_urls(key: str, mp_id: str, parts: list[tuple[int, int]], seconds: int) -> list[UploadPart]:
    """Presigned PUTs for (part number, exact length) parts of the multipart upload `mp_id`."""
    bucket = get_settings().store.bucket
    return [UploadPart(n, storage.presigned_part(bucket, key, mp_id, n, length, seconds), length)
            for n, length in parts]


def _upload(upload_id: str) -> dict[str, Any]:
    if (parsed := as_uuid(upload_id)) is None:
        raise NotFound("no such upload", {"upload_id": str(upload_id)[:80]})
    uid = str(parsed)
    with db.connection() as conn:
        row = conn.execute("select * from stage1_uploads where upload_id = %s", (uid,)).fetchone()
    if row is None:
        raise NotFound("no such upload", {"upload_id": uid})
    return {**row, "upload_id": str(row["upload_id"]), "job_id": str(row["job_id"])}


def _head(bucket: str, key: str) -> int | None:
    from botocore.exceptions import ClientError

    try:
        return int(storage.get_s3().head_object(Bucket=bucket, Key=key)["ContentLength"])
    except ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
            return None
        raise


def complete_upload(upload_id: str, req: CompleteRequest) -> UploadCompleted:
    """Finish a multipart upload (with the client's part ETags, or the parts the store lists), and
    in every case nudge the import: idempotent, safe to call again or alongside the event. The
    object must be exactly the declared size (else it is deleted and the job FAILED: a 400)."""
    up = _upload(upload_id)
    if up["chunks"] is not None:
        return _complete_chunked(up, req)
    lengths = part_lengths(up["size"], up["part_size"]) if up["part_size"] else []
    _check_parts_list(req.parts, len(lengths))
    if up["status"] == REJECTED:
        raise _rejected(up, jobs.get_job(up["job_id"]).error or "the upload was rejected")
    bucket, key = get_settings().store.bucket, up["object_key"]
    size = _head(bucket, key)
    if size is None and up["multipart_upload_id"]:
        size = _finish_multipart(up, req.parts, lengths)
    job = jobs.get_job(up["job_id"])
    if size is None:
        return UploadCompleted(upload_id=up["upload_id"], job_id=job.job_id, status=job.status, uploaded=False,
                               poll_url=job_poll_url(job.job_id), message="the object has not arrived yet")
    if size != up["size"]:
        raise _rejected(up, refuse_object(up, size))
    with db.connection() as conn:
        conn.execute("update stage1_uploads set status = 'UPLOADED', multipart_upload_id = null, updated_at = now() "
                     "where upload_id = %s and status <> 'REJECTED'", (up["upload_id"],))
        jobs.update_payload(conn, job.job_id, {"ready": True})
    if job.status == jobs.PENDING:
        dispatch.dispatch_job(job)
        message = "import started"
    else:
        message = f"import is {job.status}"
    return UploadCompleted(upload_id=up["upload_id"], job_id=job.job_id, status=job.status, uploaded=True,
                           size=size, poll_url=job_poll_url(job.job_id), message=message)


def _complete_chunked(up: dict[str, Any], req: CompleteRequest) -> UploadCompleted:
    """For a chunked upload complete is only the nudge: chunk objects whose event was lost are
    found by listing the bucket and imported; the job commits once every chunk is in."""
    if req.parts:
        raise BadRequest("a chunked upload has no parts: complete it without them", {"field": "parts"})
    if up["status"] == REJECTED:
        raise _rejected(up, jobs.get_job(up["job_id"]).error or "the upload was rejected")
    now = chunked.status(up)
    done = not now.missing
    message = (f"import is {now.job_status}" if done else
               f"{len(now.missing)} of {now.chunk_count} chunks not uploaded yet")
    return UploadCompleted(upload_id=up["upload_id"], job_id=now.job_id, status=now.job_status, uploaded=done,
                           size=up["size"] if done else None, poll_url=now.poll_url, message=message)


def _visible(upload_id: str, caller: Caller | None) -> dict[str, Any]:
    """The upload, if the caller may see its job (a job is its creator's and the admins'); else 404."""
    up = _upload(upload_id)
    if jobs.find_job(up["job_id"], caller) is None:
        raise NotFound("no such upload", {"upload_id": up["upload_id"]})
    return up


def upload_status(upload_id: str, caller: Caller | None = None) -> UploadStatus:
    """GET /api/uploads/{id}: the upload, its job's status and (chunked) each chunk's state and the
    chunks the server has not seen arrive. Read-only: it reads Postgres alone, so polling it costs no
    bucket LIST and starts nothing (`complete` and `resume` list the bucket for lost events, and so
    does the sweeper); a chunk whose event is still on its way shows as missing until it lands."""
    up = _visible(upload_id, caller)
    if up["chunks"] is not None:
        return chunked.status(up, nudge=False)
    return _object_status(up, jobs.get_job(up["job_id"]))


def _object_status(up: dict[str, Any], job: jobs.Job, **extra: Any) -> UploadStatus:
    """A one-object upload's status from Postgres (multipart: its part size and count, from the
    declaration; which parts the store has is listed by resume alone)."""
    multipart = {}
    if up["part_size"]:
        multipart = {"multipart": True, "part_size": int(up["part_size"]),
                     "part_count": len(part_lengths(int(up["size"]), int(up["part_size"])))}
    return UploadStatus(upload_id=up["upload_id"], job_id=job.job_id, job_status=job.status, status=up["status"],
                        size=int(up["size"]), chunked=False, expires_at=job.payload.get("expires_at"),
                        rows=job.progress, poll_url=job_poll_url(job.job_id), **{**multipart, **extra})


def resume_upload(upload_id: str, caller: Caller | None = None) -> UploadStatus:
    """POST /api/uploads/{id}/resume: fresh presigned PUTs for the chunks (or the multipart parts)
    the store does not have."""
    up = _visible(upload_id, caller)
    if up["chunks"] is None and not up["part_size"]:
        raise BadRequest("this upload is a single object (one presigned POST) and cannot be resumed: upload the "
                         "file again (only chunked and multipart uploads resume)",
                         {"upload_id": up["upload_id"], "chunked": False, "multipart": False})
    if up["status"] == REJECTED:
        raise _rejected(up, jobs.get_job(up["job_id"]).error or "the upload was rejected")
    return chunked.resume(up) if up["chunks"] is not None else _resume_multipart(up)


def _resume_multipart(up: dict[str, Any]) -> UploadStatus:
    """The parts the store has (listed: S3 ListParts), and fresh presigned PUTs, each signed for its
    exact length, for (at most URLS_PER_ANSWER of) the missing ones. A stored part of another length
    rejects the upload, as complete does. The job's `expires_at` moves to the new URLs' expiry, so
    the sweeper does not fail a job whose parts are still being sent; resuming ends once the upload
    is `upload_chunked_ttl_seconds` old."""
    from botocore.exceptions import ClientError

    job = jobs.get_job(up["job_id"])
    if job.terminal:
        raise Conflict(f"the upload's job is {job.status}: nothing to resume",
                       {"upload_id": up["upload_id"], "job_id": job.job_id, "status": job.status})
    settings = get_settings()
    ttl = settings.uploads.upload_chunked_ttl_seconds
    if up["created_at"] + timedelta(seconds=ttl) < datetime.now(UTC):
        raise Conflict(f"the upload is older than {ttl} s (STAGE1_UPLOAD_CHUNKED_TTL_SECONDS): it cannot be "
                       "resumed, upload the file again", {"upload_id": up["upload_id"], "ttl_seconds": ttl})
    lengths = part_lengths(int(up["size"]), int(up["part_size"]))
    stored: set[int] | None = None
    if up["multipart_upload_id"]:
        try:
            stored = set(_stored_parts(up, lengths))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code", "") != "NoSuchUpload":
                raise
            up = _upload(up["upload_id"])  # completed (or aborted) meanwhile: the row says which
    if stored is None:
        if up["status"] != "UPLOADED":
            raise Conflict("the multipart upload is gone from the store (aborted): upload the file again",
                           {"upload_id": up["upload_id"], "status": up["status"]})
        stored = set(range(1, len(lengths) + 1))  # completed: every part is in the object
    missing = [n for n in range(1, len(lengths) + 1) if n not in stored]
    urls = None
    if missing:
        seconds = storage.url_seconds(settings.uploads.upload_url_expires_seconds)
        urls = _part_urls(up["object_key"], up["multipart_upload_id"],
                          [(n, lengths[n - 1]) for n in missing[:chunked.URLS_PER_ANSWER]], seconds)
        expires = iso(datetime.now(UTC) + timedelta(seconds=seconds))
        with db.connection() as conn:
            jobs.update_payload(conn, job.job_id, {"expires_at": expires})
        job = jobs.get_job(job.job_id)
    return _object_status(up, job, parts_missing=missing, parts=urls or [])


def _check_parts_list(parts: list[CompletedPart] | None, count: int) -> None:
    """A client's parts list names exactly the parts handed out (1..count, each once), or is absent."""
    if not parts:
        return
    if count == 0:
        raise BadRequest("this upload is a single object: complete it without parts",
                         {"field": "parts", "given": len(parts)})
    numbers = [p.part_number for p in parts]
    if sorted(numbers) != list(range(1, count + 1)):
        unknown = sorted({n for n in numbers if n > count})
        missing = sorted(set(range(1, count + 1)) - set(numbers))
        raise BadRequest(f"the parts list does not match the {count} parts handed out",
                         {"field": "parts", "parts": count, "given": len(parts), "unknown": unknown[:20],
                          "missing": missing[:20], "duplicates": len(numbers) - len(set(numbers))})


def _finish_multipart(up: dict[str, Any], given: list[CompletedPart] | None, lengths: list[int]) -> int | None:
    """Complete the multipart upload once every part is in the store at its exact length (a part of
    another length aborts it: the upload is rejected). The object's size, or None if it is absent."""
    from botocore.exceptions import ClientError

    bucket, key, mp_id = get_settings().store.bucket, up["object_key"], up["multipart_upload_id"]
    try:
        stored = _stored_parts(up, lengths)
        missing = [n for n in range(1, len(lengths) + 1) if n not in stored]
        if missing:
            raise Conflict(f"{len(missing)} of {len(lengths)} parts not uploaded yet",
                           {"upload_id": up["upload_id"], "parts": len(lengths), "missing": missing[:20]})
        etags = {p.part_number: p.etag for p in given} if given else {n: p["ETag"] for n, p in stored.items()}
        storage.get_s3().complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=mp_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etags[n]} for n in range(1, len(lengths) + 1)]})
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code != "NoSuchUpload":  # NoSuchUpload: completed (or rejected) concurrently, checked by the caller
            raise BadRequest("the object store refused to complete the upload",
                             {"code": code, "reason": str(exc)[:300]}) from exc
    return _head(bucket, key)


def _stored_parts(up: dict[str, Any], lengths: list[int]) -> dict[int, dict[str, Any]]:
    """The parts the store has (part number → PartNumber, ETag, Size), each at the exact length handed
    out: a part of another length (or number) aborts the multipart upload and rejects it (a 400)."""
    stored = {p["PartNumber"]: p for p in _list_parts(get_settings().store.bucket, up["object_key"],
                                                      up["multipart_upload_id"])}
    wrong = [n for n, p in stored.items() if n > len(lengths) or p["Size"] != lengths[n - 1]]
    if wrong:
        n = wrong[0]
        raise _rejected(up, refuse_object(
            up, None, f"part {n} is {stored[n]['Size']} bytes, not the "
                      f"{lengths[n - 1] if n <= len(lengths) else 0} handed out"))
    return stored


def _list_parts(bucket: str, key: str, mp_id: str) -> list[dict[str, Any]]:
    s3 = storage.get_s3()
    parts: list[dict[str, Any]] = []
    marker = 0
    while True:
        page = s3.list_parts(Bucket=bucket, Key=key, UploadId=mp_id, PartNumberMarker=marker)
        parts += [{"PartNumber": p["PartNumber"], "ETag": p["ETag"], "Size": p["Size"]}
                  for p in page.get("Parts", [])]
        if not page.get("IsTruncated") or len(parts) > S3_MAX_PARTS:
            return parts
        marker = page["NextPartNumberMarker"]


def _rejected(up: dict[str, Any], error: str) -> BadRequest:
    return BadRequest(error, {"upload_id": up["upload_id"], "job_id": up["job_id"], "declared": up["size"],
                              "status": REJECTED})


def refuse_object(up: dict[str, Any], size: int | None, why: str | None = None) -> str:
    """The object (or the multipart upload) does not match its declaration: FAIL the job first (so
    no importer claims it), then delete the object / abort the upload and mark it REJECTED. The
    job's error message."""
    from botocore.exceptions import ClientError

    why = why or f"the object is {size} bytes, the upload declared {up['size']}"
    error = f"upload rejected: {why}; the file was deleted and not imported"
    jobs.fail(up["job_id"], None, error, result={"error_details": {"declared": up["size"], "size": size}})
    bucket, s3 = get_settings().store.bucket, storage.get_s3()
    try:
        if up.get("multipart_upload_id"):
            s3.abort_multipart_upload(Bucket=bucket, Key=up["object_key"], UploadId=up["multipart_upload_id"])
        s3.delete_object(Bucket=bucket, Key=up["object_key"])
    except ClientError as exc:
        # Already gone, or not ours to delete: the job is FAILED and the upload REJECTED either way, so
        # nothing imports it; the bucket's lifecycle rules remove what stays.
        code = exc.response.get("Error", {}).get("Code", "")
        if code not in ("NoSuchUpload", "NoSuchKey"):
            log_fields(log, 30, "rejected object not removed", key=up["object_key"], code=code)
    with db.connection() as conn:
        conn.execute("update stage1_uploads set status = 'REJECTED', multipart_upload_id = null, updated_at = now() "
                     "where upload_id = %s", (up["upload_id"],))
    log_fields(log, 30, "upload rejected", upload_id=up["upload_id"], declared=up["size"], size=size, why=why)
    return error


def refuse_mismatch(key: str, size: int) -> str | None:
    """For the importer, before it claims a job: if the upload at `key` declared another size than
    the object's, reject it (see `refuse_object`) and return the error; else None."""
    with db.connection() as conn:
        row = conn.execute("select * from stage1_uploads where object_key = %s", (key,)).fetchone()
    if row is None or int(row["size"]) == size:
        return None
    return refuse_object({**row, "upload_id": str(row["upload_id"]), "job_id": str(row["job_id"])}, size)


# ---------------------------------------------------------------- inline imports
def _inline_format(body: bytes, content_type: str, fmt: str | None) -> str:
    if fmt:
        if fmt not in EXTENSIONS:
            raise BadRequest("unknown format", {"field": "format", "accepted": list(EXTENSIONS)})
        return fmt
    head = body[:8]
    if head[:4] == b"PAR1":
        return "parquet"
    if head[:6] == b"ARROW1" or head[:4] == b"\xff\xff\xff\xff":
        return "arrow"
    if head[:2] == b"\x1f\x8b":
        return "csv.gz"
    return format_from_name("", content_type) or "csv"


def import_async(body: bytes, *, measurement: str, kind: str, content_type: str = "", fmt: str | None = None,
                 granularity: str | None = None) -> JobAccepted:
    """The body goes to the bucket under a new upload's key; the ObjectCreated event imports it
    (and the sweeper, should the event be lost)."""
    if not body:
        raise BadRequest("empty body", {"field": "body"})
    fmt = _inline_format(body, content_type, fmt)
    created = _create(f"inline.{EXTENSIONS[fmt]}", "", len(body), kind, measurement, None, granularity)
    settings = get_settings()
    storage.get_s3().put_object(Bucket=settings.store.bucket, Key=created.object_key, Body=body,
                                ContentType=STORED_CONTENT_TYPE[fmt])
    return JobAccepted(job_id=created.job_id, status="PENDING", poll_url=job_poll_url(created.job_id),
                       message=f"Import job created. Poll {job_poll_url(created.job_id)} for status.")


def import_blocking(body: bytes, *, measurement: str, kind: str, content_type: str = "", fmt: str | None = None,
                    granularity: str | None = None) -> InlineImportResult:
    """Small bodies, imported before the response: the body is stored under `inline/` (no event)
    and the importer is invoked synchronously on its job. Missing columns: 400 listing them."""
    settings = get_settings()
    if len(body) > settings.imports.inline_import_max_bytes:
        raise PayloadTooLarge("body too large for a blocking import: upload the file or use /api/questdb/import/async",
                              {"size": len(body), "max_bytes": settings.imports.inline_import_max_bytes})
    if not body:
        raise BadRequest("empty body", {"field": "body"})
    fmt = _inline_format(body, content_type, fmt)
    check_name(measurement)  # reserved and staging names too, before any work
    key = f"{INLINE_PREFIX}{uuid.uuid4()}/data.{EXTENSIONS[fmt]}"
    storage.get_s3().put_object(Bucket=settings.store.bucket, Key=key, Body=body, ContentType=STORED_CONTENT_TYPE[fmt])
    payload = {"bucket": settings.store.bucket, "key": key, "kind": kind, "measurement": measurement, "format": fmt,
               "granularity": granularity, "size": len(body), "ready": True, "inline": True}
    with db.connection() as conn:
        job = jobs.create_job(conn, JOB_TYPE, payload, idempotency_key=f"s3://{settings.store.bucket}/{key}")
    try:
        answer = dispatch.invoke_sync("ImporterFunction", dispatch.job_event(job))
    finally:
        storage.get_s3().delete_object(Bucket=settings.store.bucket, Key=key)
    outcome = decode_outcome(answer) or Outcome(job_id=job.job_id, status="UNKNOWN")
    if outcome.status == jobs.FAILED:
        raise BadRequest(outcome.error or "import failed", {**(outcome.details or {}), "job_id": job.job_id})
    if outcome.status != jobs.COMPLETED:
        # The body is gone (deleted above): a job left PENDING could never run; close it.
        reason = outcome.error or f"import did not complete ({outcome.status})"
        jobs.fail(job.job_id, None, reason)
        if outcome.service:
            raise ServiceUnavailable(outcome.service, reason, {"job_id": job.job_id})
        raise Conflict(f"import did not complete: {outcome.status}", {"job_id": job.job_id, "status": outcome.status})
    imported = msgspec.convert(outcome.result, ImportResult)
    return InlineImportResult(job_id=job.job_id, status=outcome.status, measurement=measurement,
                              rows_written=imported.rows, result=outcome.result)


# ---------------------------------------------------------------- sweeper
def ready_for_import(job: jobs.Job) -> bool | None:
    """For the sweeper: should a stale PENDING import be dispatched? True if its object is there
    (a lost event: the upload is marked so), None if it is still awaited, False if it never came
    (the URL expired an hour ago: the job is failed)."""
    payload = job.payload
    if payload.get("chunked"):
        # Lost chunk events of a job still PENDING (none started): found and dispatched here; the job
        # itself is only "waiting" (its chunks run in invocations of their own). RUNNING ones and
        # expiry are `chunks.sweep`'s.
        if (up := chunked.upload_of_job(job.job_id)) is not None:
            chunked.revive(up)
        return None
    if payload.get("ready"):
        return True
    size = _head(payload["bucket"], payload["key"])
    if size is not None and refuse_mismatch(payload["key"], size) is not None:
        return False
    if size is not None:
        with db.connection() as conn:
            conn.execute("update stage1_uploads set status = 'UPLOADED', updated_at = now() where object_key = %s",
                         (payload["key"],))
            jobs.update_payload(conn, job.job_id, {"ready": True})
        log_fields(log, 20, "object found without an event", key=payload["key"])
        return True
    expires = payload.get("expires_at")
    if expires and datetime.fromisoformat(expires.replace("Z", "+00:00")) + timedelta(hours=1) < datetime.now(UTC):
        jobs.fail(job.job_id, None, "the file was never uploaded (the upload URL expired)")
        _abort_abandoned(payload["key"])
        return False
    return None


def _abort_abandoned(key: str) -> None:
    """The parts of a multipart upload that never completed would stay in the bucket: abort it."""
    from botocore.exceptions import ClientError

    with db.connection() as conn:
        # RETURNING gives the new (null) value: the old id comes from the locked row.
        row = conn.execute("update stage1_uploads u set multipart_upload_id = null, updated_at = now() "
                           "from (select upload_id, multipart_upload_id from stage1_uploads where object_key = %s "
                           "and multipart_upload_id is not null for update) old "
                           "where u.upload_id = old.upload_id returning old.multipart_upload_id",
                           (key,)).fetchone()
    if row is None:
        return
    try:
        storage.get_s3().abort_multipart_upload(Bucket=get_settings().store.bucket, Key=key,
                                                UploadId=row["multipart_upload_id"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code", "") != "NoSuchUpload":
            raise
