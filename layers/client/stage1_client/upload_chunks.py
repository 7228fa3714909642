"""Chunked, resumable uploads of large CSV files (docs/client.md, docs/imports.md "Chunked uploads").

The file is cut at row boundaries into chunks of about `chunk_bytes`, each a valid CSV of its own
(the header, then whole rows: the cut is after a newline), without reading the file into memory:
only the bytes around each cut are read to find the newline. Each chunk goes up with its own
presigned PUT (its exact length is signed), several at once, streamed from disk; the server imports
each chunk as it lands, while the next ones are still on their way.

Resume: the upload id is kept in a small state file keyed by the file's path, size and mtime (and
the server and target), under `~/.cache/stage1/uploads/` (`STAGE1_CACHE_DIR`), mode 0600. A second
run with the same file asks the server which chunks it does not have (`POST /api/uploads/{id}/resume`)
and sends only those. The state file goes once the job has ended.

Only CSV is cut (a quoted field may hold a newline, so a file with quotes in its first MiB goes up as
one object); Parquet, Arrow and CSV.gz go up as one object (they import several times faster than
CSV already, and cutting them needs pyarrow, which the client does not require).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from stage1_client.errors import ApiError

CHUNK_BYTES = 32 * 1024**2  # per chunk: ~600k OHLCV rows, a few seconds of import each
CHUNK_THRESHOLD = 128 * 1024**2  # files above this are chunked (below: one object or multipart)
CHUNKED_KINDS = ("ohlcv", "indicators", "predictions")  # rows keyed by their own columns, not their ordinal
CSV_SUFFIXES = (".csv", ".txt")
READ = 1024 * 1024
ATTEMPTS = 3


@dataclass(frozen=True)
class Plan:
    """Where each chunk's rows are in the file: the header's length, then (offset, length) of each
    chunk's rows. A chunk's object is the header followed by those bytes."""

    header: int
    ranges: list[tuple[int, int]]

    def sizes(self) -> list[int]:
        return [self.header + length for _, length in self.ranges]


def chunkable(path: Path, kind: str, size: int, threshold: int) -> bool:
    """Is this file cut into chunks? A CSV of a kind keyed by its own columns, above the threshold,
    without quotes in its first MiB (a quoted field may hold a newline: a cut there breaks a row)."""
    if kind not in CHUNKED_KINDS or path.suffix.lower() not in CSV_SUFFIXES or size <= threshold:
        return False
    with open(path, "rb") as f:
        head = f.read(READ)
    return b'"' not in head and b"\n" in head


def plan(path: Path, chunk_bytes: int) -> Plan:
    """Cut the file after a newline about every `chunk_bytes` bytes (reads only around each cut)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        first = f.read(READ)
        nl = first.find(b"\n")
        if nl < 0:
            raise ApiError(0, f"{path}: no header line in its first MiB")
        header = nl + 1
        ranges: list[tuple[int, int]] = []
        start = header
        while start < size:
            end = start + chunk_bytes
            end = size if end >= size else _next_line(f, end, size)
            ranges.append((start, end - start))
            start = end
    if not ranges:
        raise ApiError(0, f"{path} has a header and no rows")
    return Plan(header, ranges)


def _next_line(f: Any, pos: int, size: int) -> int:
    """The offset just after the first newline at or after `pos` (or the end of the file)."""
    f.seek(pos)
    while pos < size:
        block = f.read(64 * 1024)
        if not block:
            break
        i = block.find(b"\n")
        if i >= 0:
            return pos + i + 1
        pos += len(block)
    return size


def file_range(path: Path, offset: int, length: int, progress: Any, sent: list[int]) -> Iterator[bytes]:
    """`length` bytes of the file from `offset`, streamed in 1 MiB pieces, counted into `progress`."""
    with open(path, "rb") as f:
        f.seek(offset)
        left = length
        while left > 0:
            chunk = f.read(min(READ, left))
            if not chunk:
                raise ApiError(0, f"{path} shrank while uploading", {"offset": offset + length - left})
            left -= len(chunk)
            sent[0] += len(chunk)
            progress.add(len(chunk))
            yield chunk


def chunk_body(path: Path, header: int, offset: int, length: int, progress: Any, sent: list[int]) -> Iterator[bytes]:
    """One chunk's bytes, streamed from disk: the header, then its rows."""
    yield from file_range(path, 0, header, progress, sent)
    yield from file_range(path, offset, length, progress, sent)


# ---------------------------------------------------------------- the state file (resume)
def state_dir() -> Path:
    root = os.environ.get("STAGE1_CACHE_DIR") or str(Path.home() / ".cache" / "stage1")
    return Path(root) / "uploads"


def state_key(path: Path, *, server: str, target: str, chunk_bytes: int) -> str:
    st = path.stat()
    ident = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{server}|{target}|{chunk_bytes}"
    return hashlib.sha256(ident.encode()).hexdigest()[:32]


class StateFile:
    """`<state_dir>/<key>.json`: the upload id of a file being uploaded (mode 0600, dir 0700)."""

    def __init__(self, key: str, directory: Path | None = None) -> None:
        self.path = (directory or state_dir()) / f"{key}.json"
        self._lock = threading.Lock()

    def load(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and isinstance(data.get("upload_id"), str) else None

    def save(self, data: dict[str, Any]) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = self.path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(data, f)
            os.replace(tmp, self.path)

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


# ---------------------------------------------------------------- sending
def send_chunks(store: httpx.Client, path: Path, p: Plan, urls: list[Any], progress: Any, concurrency: int,
                store_error: Callable[[httpx.Response], ApiError]) -> int:
    """PUT each handed-out chunk (`UploadChunk`: index, url, size), `concurrency` at once; each is
    tried up to 3 times on transport errors and 5xx (`store_error` reads the store's refusal).
    Returns the count sent."""
    sizes = p.sizes()
    for u in urls:
        if not 1 <= u.index <= len(sizes) or u.size != sizes[u.index - 1]:
            raise ApiError(0, f"the server's chunk {u.index} ({u.size} bytes) is not this file's cut",
                           {"chunk": u.index, "size": u.size})

    def put(u: Any) -> None:
        offset, length = p.ranges[u.index - 1]
        error: ApiError | None = None
        for _ in range(ATTEMPTS):
            sent = [0]
            try:
                r = store.put(u.url, content=chunk_body(path, p.header, offset, length, progress, sent),
                              headers={"Content-Length": str(u.size)})
            except httpx.TransportError as exc:
                error = ApiError(0, f"chunk {u.index} failed: {type(exc).__name__}: {exc}")
            else:
                if r.is_success:
                    return
                error = store_error(r)
                if r.status_code < 500:
                    break
            progress.add(-sent[0])
        assert error is not None
        raise error

    if not urls:
        return 0
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(urls)))) as pool:
        list(pool.map(put, urls))
    return len(urls)
