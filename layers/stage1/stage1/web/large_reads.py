"""One contract for every large read (POST /api/questdb/export, and the CSV reads of datasets, runs
and simulations): the `mode` parameter decides, the status code tells the client which path ran.

- `mode=auto` (default): the result is read from QuestDB up to `export_inline_max_bytes` (5 MiB;
  ¾ of that for Parquet, which Lambda base64-encodes). If it ends there: **200** with the file.
  Otherwise the read stops and an export job starts: **202** `{job_id, status, poll_url, message}`;
  the finished job's `result.url` is a presigned download URL. Same behaviour locally and on AWS.
- `mode=job`: always **202** and a job.
- `mode=inline`: always **200** with the file. Where the response can stream (the local gateway,
  a container) it streams whatever the size; on Lambda a result over the cap is a **413** saying to
  use `mode=job`/`auto`.

QuestDB's refusal is a 400 with its text in `details.questdb` (before any byte is sent).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

from litestar import Request, Response
from litestar.response import Stream

from stage1.core.csvtext import CsvBody
from stage1.core.errors import PayloadTooLarge
from stage1.core.settings import get_settings
from stage1.core.threads import in_thread
from stage1.exports.readers import close_chunks, read
from stage1.exports.service import safe_filename, start_export_job, start_reader_job
from stage1.exports.stream import CHUNK, MEDIA_TYPES, ExportTimeout, Format, csv_safe, open_sync
from stage1.jobs.schemas import JobAccepted
from stage1.sql.readonly import check_readonly
from stage1.sql.service import check_timeout
from stage1.web.responses import file_headers
from stage1_wire.exports import Mode


def inline_cap(fmt: Format) -> int:
    cap = get_settings().exports.export_inline_max_bytes
    return cap if fmt == "csv" else cap * 3 // 4


def export_timeouts(timeout: float | None, mode: Mode) -> tuple[float, float]:
    """(seconds for the inline read, seconds for an export job). An inline read must end before the
    API Lambda's 29 s (`export_max_timeout`); a job runs in the ExporterFunction (900 s) and may take
    up to `export_job_max_timeout`. With mode=auto the timeout is the job's and the inline attempt
    takes at most the inline maximum of it; a value above the mode's maximum is a 400."""
    s = get_settings()
    if mode == "inline":
        seconds = check_timeout(timeout, s.exports.export_timeout, s.exports.export_max_timeout)
        return seconds, seconds
    job = check_timeout(timeout, s.exports.export_job_timeout, s.exports.export_job_max_timeout)
    return (min(timeout, s.exports.export_max_timeout) if timeout else s.exports.export_timeout), job


def can_stream(request: Request[Any, Any, Any]) -> bool:
    """Only where the deployment says responses stream (`export_can_stream`: the local gateway, a
    container) and never behind Mangum, which buffers whole responses (it sets `aws.context`)."""
    return get_settings().exports.export_can_stream and "aws.context" not in request.scope


async def _accepted(sql: str, fmt: Format, timeout: float, filename: str, source: dict[str, Any], *,
                    large: bool) -> Response[Any]:
    accepted: JobAccepted = await in_thread(
        lambda: start_export_job(sql, fmt, timeout=timeout, filename=filename, source=source,
                                 reason="large" if large else "requested", checked=large))
    return Response(accepted, status_code=202, headers={"Location": accepted.poll_url})


async def large_read(
    request: Request[Any, Any, Any], sql: str, *, fmt: Format = "csv", mode: Mode = "auto",
    timeout: float | None = None, filename: str | None = None, source: dict[str, Any] | None = None,
) -> Response[Any]:
    """Answer a read of `sql` (checked read-only here) by the contract above."""
    statement = check_readonly(sql).sql
    inline_seconds, job_seconds = export_timeouts(timeout, mode)
    name = safe_filename(filename, fmt)
    source = source or {"path": request.url.path}
    if mode == "job":
        return await _accepted(statement, fmt, job_seconds, name, source, large=False)

    cap = inline_cap(fmt)

    def opener() -> Iterator[bytes]:
        return csv_safe(stack.enter_context(open_sync(statement, fmt, inline_seconds)), fmt)

    stack = ExitStack()
    decided = await _decide(request, stack, opener, cap, mode, fmt, name, slow_to_job=job_seconds > inline_seconds)
    if decided is not None:
        return decided
    return await _accepted(statement, fmt, job_seconds, name, source, large=True)


async def large_resource_read(request: Request[Any, Any, Any], reader: str, *, mode: Mode = "auto",
                              **args: Any) -> Response[Any]:
    """A resource read (`stage1.exports.readers`) by the same contract: JSON answers as it is; CSV
    inline when small, else a job that runs the same reader again in the ExporterFunction."""
    result = await in_thread(lambda: read(reader, args))
    if not isinstance(result, CsvBody):
        return Response(result)
    name = safe_filename(result.filename, "csv")
    if mode == "job":
        await in_thread(close_chunks, result.chunks)
        return await _accepted_reader(reader, args, name, large=False)
    stack = ExitStack()
    stack.callback(close_chunks, result.chunks)
    decided = await _decide(request, stack, lambda: result.chunks, inline_cap("csv"), mode, "csv", name,
                            headers=result.headers)
    if decided is not None:
        return decided
    return await _accepted_reader(reader, args, name, large=True)


async def _accepted_reader(reader: str, args: dict[str, Any], filename: str, *, large: bool) -> Response[Any]:
    accepted: JobAccepted = await in_thread(
        lambda: start_reader_job(reader, args, filename=filename, reason="large" if large else "requested"))
    return Response(accepted, status_code=202, headers={"Location": accepted.poll_url})


async def _decide(request: Request[Any, Any, Any], stack: ExitStack, opener: Callable[[], Iterator[bytes]],
                  cap: int, mode: Mode, fmt: Format, name: str, *, slow_to_job: bool = True,
                  headers: dict[str, str] | None = None) -> Response[Any] | None:
    """Read up to `cap` bytes: the whole result (200), a stream of it (200, inline where streaming
    works), a 413 (inline where it does not), or None: too large, the caller starts a job.

    Also bounded in time, so a synchronous answer ends before the API Lambda's 29 s: the head is
    read for at most `export_max_timeout` (checked between pieces; a SQL export's own watchdog
    interrupts a read). A head that is too slow is, with mode=auto, a job like a large one (unless
    the job would have no more time: `slow_to_job=False`, a 504); with mode=inline a 504 where the
    answer cannot stream."""
    budget = get_settings().exports.export_max_timeout
    started = time.monotonic()

    def read_head() -> tuple[Iterator[bytes], bytes, bool]:
        pieces = iter(opener())
        head = bytearray()
        while len(head) <= cap and time.monotonic() - started < budget:
            try:
                head += next(pieces)
            except StopIteration:
                return pieces, bytes(head), True
        return pieces, bytes(head), False

    try:
        try:
            rest, head, finished = await in_thread(read_head)
        except ExportTimeout:
            if mode != "auto" or not slow_to_job:
                raise
            rest, head, finished = iter(()), b"", False  # slow: the job gets the whole budget
        slow = not finished and len(head) <= cap
        if finished or mode == "auto" or not can_stream(request):
            await in_thread(stack.close)  # closing the connection makes QuestDB stop
        else:
            # Litestar runs a sync iterator in worker threads, one ~1 MiB piece per hop.
            return Stream(_body(stack.pop_all(), head, rest), media_type=MEDIA_TYPES[fmt],
                          headers={**file_headers(name), **(headers or {})})
    except BaseException:
        await in_thread(stack.close)
        raise
    if finished:
        return Response(head, media_type=MEDIA_TYPES[fmt], headers={**file_headers(name), **(headers or {})})
    if mode == "inline":
        if slow:
            raise ExportTimeout(budget)
        raise PayloadTooLarge(f"the result is larger than {cap} bytes; use mode=job or mode=auto",
                              {"limit_bytes": cap, "mode": mode})
    return None


def _body(owned: ExitStack, head: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    """The streamed response owns the open read and closes it however the stream ends. Pieces are
    coalesced to ~1 MiB: each one costs Litestar a worker-thread hop (the resource readers yield 64 KiB)."""
    with owned:
        yield head
        buffer: list[bytes] = []
        size = 0
        for piece in rest:
            buffer.append(piece)
            size += len(piece)
            if size >= CHUNK:
                yield buffer[0] if len(buffer) == 1 else b"".join(buffer)
                buffer, size = [], 0
        if buffer:
            yield b"".join(buffer)
