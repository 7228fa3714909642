"""Chunked uploads, the API and bookkeeping side (boto3 and SQL only: the zip functions use it;
the importing side is `stage1.imports.chunks`). docs/imports.md, "Chunked uploads".

A large file goes up as chunk objects, each a valid file on its own (cut at row boundaries by the
client, a CSV chunk with the header). The upload declares each chunk's size; the server makes the
keys (`uploads/<upload_id>/chunk-000001.csv`), hands out one presigned PUT per chunk (its exact
Content-Length signed) and records every chunk in `stage1_upload_chunks` (migration 0018). Each
chunk's ObjectCreated event imports that chunk into the job's staging table at once; the job commits
once the last chunk is IMPORTED (decided under the upload row's lock, so exactly one invocation
commits). Chunk state lives in Postgres, so a client that died asks which chunks are missing
(`status`) and gets fresh URLs for those only (`resume`).

Job states of a chunked upload: PENDING until a chunk import starts; RUNNING without a lease owner
while chunks import (each chunk holds its own lease; the jobs sweeper leaves a lease-less job
alone); RUNNING with a lease once the commit is claimed (then the ordinary worker path). The
sweeper's pass here (`sweep`) re-dispatches chunks whose event was lost or whose invocation died,
and expires uploads not complete `upload_chunked_ttl_seconds` after they were created.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import Connection

from stage1.core import db, storage
from stage1.core.errors import BadRequest, Conflict
from stage1.core.logging import get_logger, log_fields
from stage1.core.settings import get_settings
from stage1.core.times import iso
from stage1.jobs import dispatch
from stage1.jobs import service as jobs
from stage1.uploads.formats import EXTENSIONS
from stage1.uploads.schemas import ChunkState, UploadChunk, UploadStatus

log = get_logger("uploads.chunks")

PENDING, IMPORTING, IMPORTED, FAILED = "PENDING", "IMPORTING", "IMPORTED", "FAILED"
# Kinds whose rows carry their own key: a chunk's rows are the same rows as in the whole file. Raw
# rows and trades without `trade_index` are keyed by their ordinal in the file, which a chunk cannot
# know (it restarts at 0): those go up as one object.
CHUNKED_KINDS = ("ohlcv", "indicators", "predictions")
# Presigned URLs per answer (each ~0.7 KB: 1,000 keep an answer near 1 MB, under Lambda's 6 MB).
URLS_PER_ANSWER = 1000
# A chunk (or a chunked job) untouched this long is looked at again by the sweeper.
STALE_SECONDS = 30
_KEY = re.compile(r"^uploads/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/chunk-(\d{6})\.")


def chunk_key(upload_id: str, index: int, fmt: str) -> str:
    return f"uploads/{upload_id}/chunk-{index:06d}.{EXTENSIONS[fmt]}"


def upload_key(upload_id: str) -> str:
    """The upload row's `object_key` of a chunked upload: the prefix of its chunks, never an object."""
    return f"uploads/{upload_id}/chunks/"


def parse_chunk_key(key: str) -> tuple[str, int] | None:
    """(upload_id, chunk index) of a chunk object's key, or None if the key is not a chunk's."""
    m = _KEY.match(key)
    return (m.group(1), int(m.group(2))) if m else None


def validate(sizes: list[int], size: int, kind: str) -> None:
    """A chunk declaration, before anything is created: 400 naming the field or the limit."""
    limits = get_settings().uploads
    if kind not in CHUNKED_KINDS:
        raise BadRequest(f"a {kind} upload cannot be chunked (its rows are keyed by their ordinal in the file): "
                         "upload it as one object", {"field": "chunks", "kind": kind, "accepted": list(CHUNKED_KINDS)})
    if not sizes:
        raise BadRequest("chunks: at least one chunk", {"field": "chunks", "chunks": 0})
    if len(sizes) > limits.upload_max_chunks:
        raise BadRequest(f"too many chunks: at most {limits.upload_max_chunks} (STAGE1_UPLOAD_MAX_CHUNKS)",
                         {"field": "chunks", "chunks": len(sizes), "limit": "upload_max_chunks",
                          "max_chunks": limits.upload_max_chunks})
    big = [i for i, n in enumerate(sizes, start=1) if n > limits.upload_chunk_max_bytes]
    if big:
        raise BadRequest(f"chunk {big[0]} is larger than {limits.upload_chunk_max_bytes} bytes "
                         "(STAGE1_UPLOAD_CHUNK_MAX_BYTES)",
                         {"field": "chunks", "chunk": big[0], "limit": "upload_chunk_max_bytes",
                          "max_bytes": limits.upload_chunk_max_bytes})
    if sum(sizes) != size:
        raise BadRequest(f"the chunks' sizes add up to {sum(sizes)} bytes, not the declared size {size}",
                         {"field": "chunks", "sum": sum(sizes), "size": size})


def record(conn: Connection[Any], upload_id: str, sizes: list[int]) -> datetime:
    """The chunk rows and the upload's chunk count and deadline, in the upload's transaction."""
    expires = datetime.now(UTC) + timedelta(seconds=get_settings().uploads.upload_chunked_ttl_seconds)
    conn.execute("update stage1_uploads set chunks = %s, expires_at = %s where upload_id = %s",
                 (len(sizes), expires, upload_id))
    with conn.cursor() as cur, cur.copy("copy stage1_upload_chunks (upload_id, index, size) from stdin") as copy:
        for index, size in enumerate(sizes, start=1):
            copy.write_row((upload_id, index, size))
    return expires


def urls(upload_id: str, fmt: str, chunks: list[tuple[int, int]]) -> list[UploadChunk]:
    """Presigned PUTs for (index, size) chunks, at most URLS_PER_ANSWER of them."""
    settings = get_settings()
    seconds = storage.url_seconds(settings.uploads.upload_url_expires_seconds)
    out = []
    for index, size in chunks[:URLS_PER_ANSWER]:
        key = chunk_key(upload_id, index, fmt)
        out.append(UploadChunk(index=index, size=size, object_key=key,
                               url=storage.presigned_put(settings.store.bucket, key, size, seconds)))
    return out


# ---------------------------------------------------------------- what the server has
def _rows(conn: Connection[Any], upload_id: str) -> list[dict[str, Any]]:
    return conn.execute("select * from stage1_upload_chunks where upload_id = %s order by index",
                        (upload_id,)).fetchall()


def listed(upload_id: str) -> dict[str, int]:
    """The chunk objects in the bucket (key → size): one LIST per 1,000 chunks."""
    s3, bucket = storage.get_s3(), get_settings().store.bucket
    out: dict[str, int] = {}
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": f"uploads/{upload_id}/chunk-"}
        if token:
            kwargs["ContinuationToken"] = token
        page = s3.list_objects_v2(**kwargs)
        out.update({o["Key"]: int(o["Size"]) for o in page.get("Contents", [])})
        if not page.get("IsTruncated") or len(out) > 10_000:
            return out
        token = page.get("NextContinuationToken")


def notice_arrivals(up: dict[str, Any]) -> list[int]:
    """List the bucket and record the chunk objects that are there (an event may have been lost).
    Returns the indices of arrived chunks that still wait for an import."""
    present = listed(up["upload_id"])
    indices = [i for key in present if (ref := parse_chunk_key(key)) and (i := ref[1]) <= up["chunks"]]
    with db.connection() as conn:
        if indices:
            conn.execute("update stage1_upload_chunks set arrived_at = coalesce(arrived_at, now()) "
                         "where upload_id = %s and index = any(%s) and arrived_at is null",
                         (up["upload_id"], indices))
        rows = conn.execute("select index from stage1_upload_chunks where upload_id = %s and state = 'PENDING' "
                            "and arrived_at is not null order by index", (up["upload_id"],)).fetchall()
    return [r["index"] for r in rows]


def s3_record(key: str, size: int | None = None) -> dict[str, Any]:
    """An S3-shaped ObjectCreated event for one chunk: what the sweeper and the nudge dispatch, so a
    re-dispatched chunk goes through the same path as its event, in an invocation of its own."""
    obj: dict[str, Any] = {"key": key} if size is None else {"key": key, "size": size}
    return {"Records": [{"eventName": "ObjectCreated:Put",
                         "s3": {"bucket": {"name": get_settings().store.bucket}, "object": obj}}]}


def dispatch_chunks(up: dict[str, Any], indices: list[int]) -> int:
    """One importer invocation per chunk (fan-out; the function's concurrency bounds them)."""
    for index in indices:
        dispatch.invoke_async("ImporterFunction", s3_record(chunk_key(up["upload_id"], index, up["format"])))
    return len(indices)


def status(up: dict[str, Any], *, nudge: bool = True) -> UploadStatus:
    """What the server has of a chunked upload. With `nudge`, the bucket is listed first: chunk
    objects whose event never came are recorded and their import started."""
    job = jobs.get_job(up["job_id"])
    if nudge and not job.terminal:
        waiting = notice_arrivals(up)
        if waiting:
            dispatch_chunks(up, waiting)
        elif job.status == jobs.PENDING and all_imported(up["upload_id"]):
            dispatch.dispatch_job(job)  # every chunk in, the commit never ran (lost): run it
    with db.connection() as conn:
        rows = _rows(conn, up["upload_id"])
    states = [ChunkState(index=r["index"], size=int(r["size"]), state=r["state"], arrived=r["arrived_at"] is not None,
                         rows=int(r["rows"]), attempts=r["attempts"], error=r["error"]) for r in rows]
    missing = [c.index for c in states if c.state != IMPORTED and not c.arrived]
    return UploadStatus(
        upload_id=up["upload_id"], job_id=job.job_id, job_status=job.status, status=up["status"], size=int(up["size"]),
        chunked=True, expires_at=iso(up.get("expires_at")), rows=sum(c.rows for c in states),
        chunk_count=len(states), chunks_imported=sum(c.state == IMPORTED for c in states), missing=missing,
        chunks=states, poll_url=f"/api/jobs/{job.job_id}")


def resume(up: dict[str, Any]) -> UploadStatus:
    """`status`, plus fresh presigned PUTs for the missing chunks (at most 1,000; ask again for more)."""
    job = jobs.get_job(up["job_id"])
    if job.terminal:
        raise Conflict(f"the upload's job is {job.status}: nothing to resume",
                       {"upload_id": up["upload_id"], "job_id": job.job_id, "status": job.status})
    now = status(up)
    sizes = {c.index: c.size for c in now.chunks or []}
    now.urls = urls(up["upload_id"], up["format"], [(i, sizes[i]) for i in now.missing])
    return now


def all_imported(upload_id: str) -> bool:
    with db.connection() as conn:
        row = conn.execute("select count(*) filter (where state <> 'IMPORTED') as left, count(*) as n "
                           "from stage1_upload_chunks where upload_id = %s", (upload_id,)).fetchone()
    return row["n"] > 0 and row["left"] == 0


def upload_of_job(job_id: str) -> dict[str, Any] | None:
    with db.connection() as conn:
        row = conn.execute("select * from stage1_uploads where job_id = %s and chunks is not null",
                           (job_id,)).fetchone()
    return None if row is None else {**row, "upload_id": str(row["upload_id"]), "job_id": str(row["job_id"])}


# ---------------------------------------------------------------- cleanup
def delete_objects(upload_id: str) -> int:
    """Delete every chunk object of an upload (1,000 per request)."""
    keys = list(listed(upload_id))
    s3, bucket = storage.get_s3(), get_settings().store.bucket
    for batch in _batches(keys, 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
    return len(keys)


def _batches(items: list[str], n: int) -> Iterator[list[str]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def reset_after_stop(upload_id: str) -> None:
    """The job failed or was cancelled and its staging table is dropped: no chunk's rows are kept
    anywhere, so none counts as IMPORTED any more (a retry imports them all again). FAILED chunks
    keep their state and error."""
    with db.connection() as conn:
        conn.execute("update stage1_upload_chunks set state = 'PENDING', rows = 0, lease_owner = null, "
                     "lease_expires_at = null, updated_at = now() where upload_id = %s and state <> 'FAILED'",
                     (upload_id,))


def expire(up: dict[str, Any], why: str) -> bool:
    """An upload past its deadline: its job FAILED with `why` (if it was still open), its chunk
    objects deleted, its staging table dropped. True if this call failed the job."""
    failed = jobs.fail(up["job_id"], None, why)
    if not failed:
        # A job RUNNING under a lease is committing (or a chunk import finishing): not ours to stop.
        job = jobs.find_job(up["job_id"])
        if job is not None and not job.terminal:
            return False
    deleted = delete_objects(up["upload_id"])
    from stage1.jobs.sweeper import drop_orphan_staging

    drop_orphan_staging(job_id=up["job_id"])
    reset_after_stop(up["upload_id"])
    with db.connection() as conn:
        conn.execute("update stage1_uploads set expires_at = null, updated_at = now() where upload_id = %s",
                     (up["upload_id"],))
    log_fields(log, 30, "chunked upload expired", upload_id=up["upload_id"], job_id=up["job_id"], objects=deleted,
               why=why)
    return failed


def _expiry_message(upload_id: str) -> str:
    with db.connection() as conn:
        row = conn.execute("select count(*) filter (where state = 'IMPORTED') as done, count(*) as n "
                           "from stage1_upload_chunks where upload_id = %s", (upload_id,)).fetchone()
    return (f"upload expired: {row['done']} of {row['n']} chunks imported when its time ran out "
            f"(STAGE1_UPLOAD_CHUNKED_TTL_SECONDS); its objects were deleted and nothing was committed")


_EXPIRED = ("select u.* from stage1_uploads u join stage1_jobs j on j.job_id = u.job_id "
            "where u.chunks is not null and u.expires_at < %s order by u.expires_at limit %s")
# Open chunked jobs (PENDING, or RUNNING without a commit lease) untouched for a while.
_STALE = ("select u.* from stage1_uploads u join stage1_jobs j on j.job_id = u.job_id "
          "where u.chunks is not null and u.expires_at is not null "
          "and j.updated_at < now() - make_interval(secs => %s) "
          "and (j.status = 'PENDING' or (j.status = 'RUNNING' and j.lease_owner is null)) "
          "order by j.updated_at limit %s")


def _ups(sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    with db.connection() as conn:
        rows = conn.execute(sql, params).fetchall()
    return [{**r, "upload_id": str(r["upload_id"]), "job_id": str(r["job_id"])} for r in rows]


def sweep(*, now: datetime | None = None, limit: int = 20, stale_after: int = STALE_SECONDS) -> dict[str, int]:
    """The sweeper's pass over chunked uploads:
    1. past `expires_at` (an open job: FAILED; any job that did not complete: its objects deleted);
    2. open jobs untouched for `stale_after` s: the bucket is listed (lost events), chunks whose
       import lease expired (a dead invocation) are freed, and every chunk that is in the bucket but
       not imported is dispatched again (one invocation each); a job whose chunks are all imported
       but which never committed is dispatched."""
    expired = redispatched = 0
    for up in _ups(_EXPIRED, (now or datetime.now(UTC), limit)):
        job = jobs.find_job(up["job_id"])
        if job is not None and job.status == jobs.COMPLETED:
            with db.connection() as conn:  # done in time: nothing to clean
                conn.execute("update stage1_uploads set expires_at = null where upload_id = %s", (up["upload_id"],))
            continue
        try:
            expired += expire(up, _expiry_message(up["upload_id"]))
        except Exception as exc:  # the next pass tries again
            log_fields(log, 40, "expiry failed", upload_id=up["upload_id"], error=str(exc)[:300])
    for up in _ups(_STALE, (stale_after, limit)):
        try:
            redispatched += revive(up)
        except Exception as exc:
            log_fields(log, 40, "chunk re-dispatch failed", upload_id=up["upload_id"], error=str(exc)[:300])
    return {"chunked_expired": expired, "chunks_redispatched": redispatched}


def revive(up: dict[str, Any]) -> int:
    """A stale open chunked job: chunks whose import lease expired are freed, the bucket is listed
    (lost events), every chunk in it but not imported is dispatched; a job whose chunks are all in
    is dispatched to commit. Returns how many invocations it started."""
    with db.connection() as conn:
        conn.execute("update stage1_upload_chunks set state = 'PENDING', lease_owner = null, lease_expires_at = null, "
                     "error = coalesce(error, 'import lease expired (invocation lost)'), updated_at = now() "
                     "where upload_id = %s and state = 'IMPORTING' and lease_expires_at < now()", (up["upload_id"],))
        conn.execute("update stage1_jobs set updated_at = now() where job_id = %s", (up["job_id"],))
    waiting = notice_arrivals(up)
    if waiting:
        return dispatch_chunks(up, waiting)
    if all_imported(up["upload_id"]):
        job = jobs.find_job(up["job_id"])
        if job is not None:
            dispatch.dispatch_job(job)
            return 1
    return 0
