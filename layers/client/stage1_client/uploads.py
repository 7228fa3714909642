"""Uploads straight to the object store with the presigned URLs the service hands out.

`POST /api/uploads` answers either one presigned POST (`url` + `fields`; a presigned PUT when
`method` is PUT) or, above the server's size threshold, a multipart upload with one presigned URL
per part (`parts`). Every URL takes exactly the bytes it was signed for (the POST policy's size, each
part's `size`): the client sends just those, and checks the parts cover the file before any PUT. The
file is streamed from disk in chunks — never read whole — with byte
progress reported through `on_bytes(sent, size)`; parts go up in parallel. A multipart upload is
finished with `POST /api/uploads/{id}/complete` (which is also the idempotent nudge for a single
upload whose object-store event went missing). The import job then runs server-side: follow it
with `wait()` (events or polling; see stage1_client.jobs).
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import httpx

import stage1_client.upload_chunks as chunks_mod
from stage1_client.core import BytesCallback, Core, segment
from stage1_client.errors import ApiError
from stage1_client.jobs import Jobs
from stage1_client.resources import Datasets
from stage1_wire.jobs import JobOut
from stage1_wire.uploads import (
    CompletedPart,
    CompleteRequest,
    DatasetUploadRequest,
    UploadChunk,
    UploadCompleted,
    UploadCreated,
    UploadPart,
    UploadRequest,
    UploadStatus,
)

KINDS = ("ohlcv", "indicators", "predictions", "trades", "raw")
CONTENT_TYPES = {
    ".csv": "text/csv",
    ".gz": "application/gzip",
    ".parquet": "application/vnd.apache.parquet",
    ".pq": "application/vnd.apache.parquet",
    ".arrow": "application/vnd.apache.arrow.file",
    ".feather": "application/vnd.apache.arrow.file",
    ".ipc": "application/vnd.apache.arrow.file",
}
PART_ATTEMPTS = 3
# A single upload's import still PENDING this long after the bytes arrived: nudge it (the object
# store's event may be lost), then again at this interval.
NUDGE_AFTER_SECONDS = 5.0


@dataclass
class Upload:
    """A finished transfer: the upload and the import job that follows it."""

    upload_id: str
    job_id: str
    size: int
    multipart: bool
    parts: int
    created: UploadCreated | None = field(repr=False, default=None)
    # Chunked uploads: the chunk count, how many this call sent, and whether it resumed an earlier run.
    chunks: int = 0
    sent_chunks: int = 0
    resumed: bool = False
    state_file: Path | None = field(repr=False, default=None)


def content_type_for(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")


class _Progress:
    """Bytes sent across threads; a retried part takes its bytes back."""

    def __init__(self, size: int, callback: BytesCallback | None) -> None:
        self.size, self.callback, self.done = size, callback, 0
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self.done += n
            done = self.done
        if self.callback is not None:
            self.callback(done, self.size)


class _CountingFile:
    """A file object for httpx's multipart encoder that reports what it reads. httpx sizes the
    body from `fileno()` (so the POST carries a Content-Length, as S3's POST policy wants) and
    reads it in 64 KiB chunks."""

    def __init__(self, f: BinaryIO, progress: _Progress) -> None:
        self.f, self.progress, self.sent = f, progress, 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.sent += len(data)
        self.progress.add(len(data))
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        if offset == 0 and whence == 0 and self.sent:  # a re-send starts the count again
            self.progress.add(-self.sent)
            self.sent = 0
        return self.f.seek(offset, whence)

    def tell(self) -> int:
        return self.f.tell()

    def fileno(self) -> int:
        return self.f.fileno()


class Uploads:
    """Uploads go through `client`; `datasets` checks a named dataset, `jobs` follows the import."""

    def __init__(self, client: Core, *, jobs: Jobs, datasets: Datasets) -> None:
        self.client, self.jobs, self.datasets = client, jobs, datasets

    def create(self, *, filename: str, size: int, kind: str, measurement: str | None = None,
               dataset: str | None = None, content_type: str = "", chunks: list[int] | None = None) -> UploadCreated:
        """The presigned URL(s) for one file: `POST /api/datasets/{dataset}/uploads` for a
        dataset's ohlcv/indicators (the measurement defaults to the dataset's table), else
        `POST /api/uploads` (a measurement is required)."""

        if dataset is not None and kind in ("ohlcv", "indicators"):
            body: Any = DatasetUploadRequest(filename=filename, size=size, kind=kind,
                                             content_type=content_type, measurement=measurement, chunks=chunks)
            path = f"/api/datasets/{segment(dataset)}/uploads"
        else:
            if not measurement:
                raise ApiError(0, f"a {kind} upload needs --measurement (only ohlcv and indicators default to "
                                  "the dataset's tables)", {"kind": kind})
            body = UploadRequest(filename=filename, size=size, kind=kind,
                                 measurement=measurement, content_type=content_type, chunks=chunks)
            path = "/api/uploads"
        return self.client.request("POST", path, UploadCreated, body=body)

    def complete(self, upload_id: str, parts: list[dict[str, Any]] | None = None) -> UploadCompleted:
        """Finish a multipart upload (`parts`: part_number + etag; without them the server lists
        the parts), and in every case nudge the import — idempotent."""

        body = CompleteRequest(parts=[CompletedPart(part_number=p["part_number"], etag=p["etag"])
                                      for p in parts] if parts else None)
        return self.client.request("POST", f"/api/uploads/{_uid(upload_id)}/complete", UploadCompleted, body=body)

    def status(self, upload_id: str) -> UploadStatus:
        """What the server has of an upload (chunked: each chunk's state and the missing ones)."""
        return self.client.request("GET", f"/api/uploads/{_uid(upload_id)}", UploadStatus)

    def resume(self, upload_id: str) -> UploadStatus:
        """A chunked upload's missing chunks, with fresh PUT URLs (at most 1,000 per call)."""
        return self.client.request("POST", f"/api/uploads/{_uid(upload_id)}/resume", UploadStatus, safe=True)

    def upload(self, path: str | Path, *, kind: str, dataset: str | None = None, measurement: str | None = None,
               content_type: str | None = None, on_bytes: BytesCallback | None = None,
               concurrency: int = 4, chunk_bytes: int = chunks_mod.CHUNK_BYTES,
               chunk_threshold: int = chunks_mod.CHUNK_THRESHOLD, resume: bool = True,
               state_dir: Path | None = None) -> Upload:
        """Send one file (CSV, CSV.gz, Parquet, Arrow IPC). With `dataset` (slug or UUID) and no
        `measurement`, an ohlcv/indicators file goes to that dataset's table of its kind.

        A CSV above `chunk_threshold` (128 MiB; 0 chunk_bytes: never) of kind ohlcv, indicators or
        predictions goes up in chunks of about `chunk_bytes` (stage1_client.upload_chunks), imported
        as they land; with `resume`, a second call for the same unchanged file sends only the chunks
        the server does not have."""
        path = Path(path)
        if kind not in KINDS:
            raise ApiError(0, f"kind must be one of {', '.join(KINDS)}", {"kind": kind})
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise ApiError(0, f"cannot read {path}: {exc.strerror}") from exc
        if size == 0:
            raise ApiError(0, f"{path} is empty")
        if dataset is not None and kind not in ("ohlcv", "indicators"):
            self.datasets.get(dataset)  # a clear 404 for a mistyped slug
        if chunk_bytes > 0 and chunks_mod.chunkable(path, kind, size, chunk_threshold):
            done = self._chunked(path, size, kind=kind, dataset=dataset, measurement=measurement,
                                 content_type=content_type or content_type_for(path), on_bytes=on_bytes,
                                 concurrency=concurrency, chunk_bytes=chunk_bytes, resume=resume, state_dir=state_dir)
            if done is not None:
                return done
        # A multipart upload keeps its id in a state file (as chunks do) until complete: a second call for
        # the same unchanged file sends only the parts the store does not have.
        state = chunks_mod.StateFile(chunks_mod.state_key(path, server=self.client.url, chunk_bytes=0,
                                                          target=f"{dataset}|{kind}|{measurement}"), state_dir)
        saved = state.load() if resume else None
        if saved is not None and (done := self._resume_multipart(path, size, saved["upload_id"], state, on_bytes,
                                                                 concurrency)) is not None:
            return done
        created = self.create(filename=path.name, size=size, kind=kind, measurement=measurement,
                              dataset=dataset, content_type=content_type or content_type_for(path))
        progress = _Progress(size, on_bytes)
        parts = created.parts or []
        if parts:
            if resume:
                state.save({"upload_id": created.upload_id, "job_id": created.job_id, "file": str(path), "size": size})
            ranges = part_ranges(size, sorted(parts, key=lambda p: p.part_number), created.part_size)
            etags: list[dict[str, Any]] | None
            try:
                etags = self._multipart(path, parts, ranges, progress, concurrency)
            except ApiError as exc:
                if exc.status != 403:
                    raise
                # Most likely the URLs expired (STAGE1_UPLOAD_URL_EXPIRES_SECONDS) during a long upload:
                # fresh ones for the missing parts, once; complete then lists every part's ETag itself.
                try:
                    now = self.resume(created.upload_id)
                except ApiError:
                    raise exc from None
                self._send_fresh(path, now, ranges, progress, concurrency)
                etags = None
            self.complete(created.upload_id, etags)
            state.remove()
        else:
            self._single(path, size, created, progress)
        return Upload(created.upload_id, created.job_id, size, bool(parts), max(1, len(parts)), created)

    def _resume_multipart(self, path: Path, size: int, upload_id: str, state: chunks_mod.StateFile,
                          on_bytes: BytesCallback | None, concurrency: int) -> Upload | None:
        """An earlier multipart upload of this file: the missing parts sent, then complete. None (and
        the state file removed) if it cannot be resumed: gone, ended, or not a multipart upload of it."""
        try:
            now = self.resume(upload_id)
        except ApiError as exc:
            if exc.status not in (400, 404, 409):  # 409: its job ended; 404: gone. Start again.
                raise
            state.remove()
            return None
        if not now.multipart or now.size != size or not now.part_count:
            state.remove()
            return None
        layout = [UploadPart(n, "") for n in range(1, now.part_count + 1)]
        ranges = part_ranges(size, layout, now.part_size)
        progress = _Progress(size, on_bytes)
        progress.add(size - sum(ranges[n][1] for n in now.parts_missing or [] if n in ranges))
        self._send_fresh(path, now, ranges, progress, concurrency)
        self.complete(upload_id)
        state.remove()
        return Upload(now.upload_id, now.job_id, size, True, now.part_count, None, resumed=True)

    def _send_fresh(self, path: Path, now: UploadStatus, ranges: dict[int, tuple[int, int]], progress: _Progress,
                    concurrency: int) -> None:
        """Send the parts a resume handed out, after checking they are exactly the missing ones at this
        file's cut."""
        fresh = now.parts or []
        if [p.part_number for p in fresh] != (now.parts_missing or []) or any(
                p.part_number not in ranges or ranges[p.part_number][1] != p.size for p in fresh):
            raise ApiError(0, "the server's fresh part URLs do not match this file's missing parts: upload it again",
                           {"upload_id": now.upload_id, "missing": (now.parts_missing or [])[:20]})
        if fresh:
            self._multipart(path, fresh, ranges, progress, concurrency)

    def _chunked(self, path: Path, size: int, *, kind: str, dataset: str | None, measurement: str | None,
                 content_type: str, on_bytes: BytesCallback | None, concurrency: int, chunk_bytes: int,
                 resume: bool, state_dir: Path | None) -> Upload | None:
        """A chunked upload (or the resume of one); None if the server does not do chunks (an older
        server ignores the field and answers a plain upload: that one is abandoned, the caller
        uploads the usual way)."""
        p = chunks_mod.plan(path, chunk_bytes)
        target = f"{dataset}|{kind}|{measurement}"
        state = chunks_mod.StateFile(chunks_mod.state_key(path, server=self.client.url, target=target,
                                                          chunk_bytes=chunk_bytes), state_dir)
        size = sum(p.sizes())  # what goes up: each chunk repeats the header
        progress = _Progress(size, on_bytes)
        saved = state.load() if resume else None
        if saved is not None:
            try:
                now = self.resume(saved["upload_id"])
            except ApiError as exc:
                if exc.status not in (400, 404, 409):  # 409: its job ended; 404: gone. Start again.
                    raise
                state.remove()
            else:
                have = size - sum(s for i, s in enumerate(p.sizes(), start=1) if i in set(now.missing))
                progress.add(have)
                sent = self._send_missing(path, p, now.urls or [], now.upload_id, progress, concurrency,
                                          len(now.missing))
                return Upload(now.upload_id, now.job_id, size, False, len(p.ranges), None, chunks=len(p.ranges),
                              sent_chunks=sent, resumed=True, state_file=state.path)
        created = self.create(filename=path.name, size=size, kind=kind, measurement=measurement, dataset=dataset,
                              content_type=content_type, chunks=p.sizes())
        if not created.chunked:
            self.client.request("POST", f"/api/jobs/{created.job_id}/cancel", dict)
            return None
        state.save({"upload_id": created.upload_id, "job_id": created.job_id, "file": str(path), "size": size})
        sent = self._send_missing(path, p, created.chunks or [], created.upload_id, progress, concurrency,
                                  len(p.ranges))
        return Upload(created.upload_id, created.job_id, size, False, len(p.ranges), created, chunks=len(p.ranges),
                      sent_chunks=sent, state_file=state.path)

    def _send_missing(self, path: Path, p: chunks_mod.Plan, urls: list[UploadChunk], upload_id: str,
                      progress: _Progress, concurrency: int, missing: int) -> int:
        """Send the handed-out chunks; while more are missing than were handed out (1,000 URLs per
        answer), ask for the next ones."""
        sent = 0
        while urls:
            sent += chunks_mod.send_chunks(self.client.store, path, p, urls, progress, concurrency, _store_error)
            if len(urls) >= missing:
                break
            now = self.resume(upload_id)
            urls, missing = now.urls or [], len(now.missing)
        # The nudge: chunks the store's events have not started yet are started now (an event can
        # lag seconds behind its PUT — MinIO's queue — or be lost); a chunk imports once either way.
        try:
            self.complete(upload_id)
        except ApiError as exc:
            if exc.status in (401, 403):
                raise
        return sent

    def wait(self, upload: Upload, *, on_update: Callable[[JobOut], None] | None = None,
             timeout: float | None = None, use_events: bool = True) -> JobOut:
        """Follow the upload's import job to COMPLETED/FAILED/CANCELLED. While it sits in PENDING
        the upload is nudged (`POST /api/uploads/{id}/complete`), in case no event arrived."""
        last = [time.monotonic()]

        def nudge(job: JobOut, idle: float) -> None:
            now = time.monotonic()
            # A chunked upload's job is RUNNING while chunks import: a lost chunk event stalls it there.
            waiting = job.status == "PENDING" or (upload.chunks and job.status == "RUNNING")
            if waiting and idle >= NUDGE_AFTER_SECONDS and now - last[0] >= NUDGE_AFTER_SECONDS:
                last[0] = now
                try:
                    self.complete(upload.upload_id)
                except ApiError as exc:
                    if exc.status in (401, 403):
                        raise
                    # anything else: the watch goes on and reports what the job does

        job = self.jobs.watch(upload.job_id, on_update=on_update, timeout=timeout, use_events=use_events,
                              on_idle=nudge)
        if upload.state_file is not None and job.status in ("COMPLETED", "FAILED", "CANCELLED"):
            upload.state_file.unlink(missing_ok=True)  # nothing left to resume
        return job

    # -- transfers
    def _single(self, path: Path, size: int, created: UploadCreated, progress: _Progress) -> None:
        url, method = created.url, (created.method or "POST").upper()
        store = self.client.store
        try:
            with open(path, "rb") as f:
                if method == "POST":
                    fields = dict(created.fields or {})
                    content_type = fields.get("Content-Type") or fields.get("content-type") or content_type_for(path)
                    response = store.post(url, data=fields, files={"file": (path.name, _CountingFile(f, progress),
                                                                            content_type)})
                else:
                    sent = [0]
                    response = store.request(method, url, content=chunks_mod.file_range(path, 0, size, progress, sent),
                                             headers={"Content-Length": str(size)})
        except httpx.TransportError as exc:
            raise ApiError(0, f"upload to the object store failed: {type(exc).__name__}: {exc}") from exc
        if response.is_error:
            raise _store_error(response)

    def _multipart(self, path: Path, parts: list[UploadPart], ranges: dict[int, tuple[int, int]], progress: _Progress,
                   concurrency: int) -> list[dict[str, Any]]:
        """PUT each of `parts` with its (offset, length) of the file, several at once; their ETags."""
        ordered = sorted(parts, key=lambda p: p.part_number)

        def send(part: UploadPart) -> dict[str, Any]:
            number = part.part_number
            offset, length = ranges[number]
            error: ApiError | None = None
            for _ in range(PART_ATTEMPTS):
                sent = [0]
                try:
                    body = chunks_mod.file_range(path, offset, length, progress, sent)
                    response = self.client.store.put(part.url, content=body,
                                                     headers={"Content-Length": str(length)})
                except httpx.TransportError as exc:
                    error = ApiError(0, f"part {number} failed: {type(exc).__name__}: {exc}")
                else:
                    if response.is_success:
                        return {"part_number": number, "etag": response.headers.get("ETag", "")}
                    error = _store_error(response)
                progress.add(-sent[0])  # a refused part's bytes too: a resume sends it again
                if 400 <= error.status < 500:
                    break
            assert error is not None
            raise error

        with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(ordered)))) as pool:
            return list(pool.map(send, ordered))


def part_ranges(size: int, parts: list[UploadPart], part_size: int | None) -> dict[int, tuple[int, int]]:
    """(offset, length) of each part: the exact length the server signed into its URL (`size`,
    else `part_size`, the last part the rest). Checked to cover the file exactly, before any PUT:
    a part URL refuses any other length."""
    step = part_size or math.ceil(size / len(parts))
    ranges: dict[int, tuple[int, int]] = {}
    offset = 0
    for part in parts:
        length = part.size if part.size is not None else min(step, size - offset)
        ranges[part.part_number] = (offset, length)
        offset += length
    numbers = [p.part_number for p in parts]
    if offset != size or numbers != list(range(1, len(parts) + 1)) or any(n <= 0 for _, n in ranges.values()):
        raise ApiError(0, f"the server's {len(parts)} parts do not cover the file's {size:,} bytes",
                       {"parts": len(parts), "covered": offset, "size": size})
    return ranges


def _store_error(response: httpx.Response) -> ApiError:
    """The object store answers S3 XML errors: keep the code and message."""
    import re

    text = response.text
    code = re.search(r"<Code>([^<]+)</Code>", text)
    message = re.search(r"<Message>([^<]+)</Message>", text)
    details = {"store_code": code.group(1)} if code else None
    what = message.group(1) if message else (text.strip().splitlines() or [response.reason_phrase])[0][:200]
    return ApiError(response.status_code, f"object store refused the upload: {what}", details)


def _uid(value: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ApiError(0, f"not an upload id: {str(value)[:64]!r}") from None
