"""Streaming QuestDB's `/exp` (CSV, or Parquet with `fmt=parquet`) without holding the result.

`/exp` is QuestDB's own exporter: it formats rows natively and refuses every statement that is not
a SELECT ("/exp endpoint only accepts SELECT", enforced by the server), which together with
`check_readonly` is the read-only guarantee of exports (docs/questdb.md). Our side only moves
bytes, in ~1 MiB pieces, so throughput stays close to `/exp` itself and memory stays flat.

Timeouts: `timeout` bounds the whole export: a watchdog closes the response when it elapses, and
closing the connection makes QuestDB stop the query (it checks the peer).
QuestDB's own `http.export.timeout` (300 s by default) applies on top.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlencode

import msgspec

from stage1.core.errors import BadRequest, HttpError, ServiceUnavailable
from stage1.core.questdb import QuestDBError
from stage1.core.settings import get_settings

if TYPE_CHECKING:
    import httpx

Format = Literal["csv", "parquet"]
CHUNK = 1 << 20
MAX_ERROR_BYTES = 64 * 1024

MEDIA_TYPES: dict[str, str] = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}


class ExportTimeout(HttpError):
    def __init__(self, timeout: float) -> None:
        super().__init__(504, "export timed out", {"timeout_seconds": timeout})


class _ExpError(msgspec.Struct):
    error: str = ""
    position: int | None = None


# `/exp` takes the statement in the URL: QuestDB drops the connection beyond ~100 KB of URL and
# httpx refuses a query component over 64 KiB, so a longer (URL-encoded) statement is a 400 up front.
MAX_EXP_QUERY_BYTES = 60_000


def exp_params(sql: str, fmt: Format) -> dict[str, str]:
    """The `/exp` parameters; a statement too long for a URL is a 400 before any request."""
    encoded = len(urlencode({"query": sql}))
    if encoded > MAX_EXP_QUERY_BYTES:
        raise BadRequest(f"the statement is too long to export ({encoded} bytes URL-encoded, at most "
                         f"{MAX_EXP_QUERY_BYTES}); remove comments and whitespace",
                         {"limit_bytes": MAX_EXP_QUERY_BYTES, "bytes": encoded})
    return {"query": sql, "fmt": "parquet"} if fmt == "parquet" else {"query": sql}


def _client_kwargs(timeout: float) -> dict[str, object]:
    import httpx  # here, not at module level: the functions that import this area pay it only when they export

    settings = get_settings()
    auth = (settings.questdb.qdb_user, settings.questdb.qdb_password) if settings.questdb.qdb_user else None
    return {
        "base_url": settings.questdb.qdb_http_url.rstrip("/"),
        "auth": auth,
        "timeout": httpx.Timeout(timeout, connect=3.0),
    }


def _error(status: int, body: bytes) -> Exception:
    """QuestDB's refusal as our error: 400 with its text in `details.questdb`, else 503."""
    try:
        parsed = msgspec.json.decode(body, type=_ExpError)
    except msgspec.DecodeError:
        parsed = _ExpError(error=body[:500].decode(errors="replace"))
    if status == 400:
        return QuestDBError("questdb rejected the query", parsed.error, parsed.position)
    return ServiceUnavailable("questdb", f"HTTP {status}", {"questdb": parsed.error})


@dataclass
class Deadline:
    timeout: float
    started: float

    @classmethod
    def start(cls, timeout: float) -> Deadline:
        return cls(timeout, time.monotonic())

    def remaining(self) -> float:
        return self.timeout - (time.monotonic() - self.started)

    def left(self) -> float:
        left = self.remaining()
        if left <= 0:
            raise ExportTimeout(self.timeout)
        return left


def csv_safe(pieces: Iterator[bytes], fmt: Format) -> Iterator[bytes]:
    """An export's pieces with formula-like text cells neutralised (CSV only; QuestDB quotes every
    string, see `stage1.core.csvtext.neutralise_csv`). Parquet is data, not a sheet: left as it is."""
    from stage1.core.csvtext import neutralise_csv

    return neutralise_csv(pieces, unquoted_text=False) if fmt == "csv" else pieces


@contextmanager
def open_sync(sql: str, fmt: Format, timeout: float) -> Iterator[Iterator[bytes]]:
    """The export as an iterator of ~1 MiB byte pieces; QuestDB's refusal is raised before it starts.

    Blocking on purpose: the synchronous httpx client costs a third of the CPU per byte of the async
    one here (2 cores shared with QuestDB), and the API side runs it in a worker thread.

    `timeout` bounds the whole export, not each read: a watchdog closes the response when it
    elapses (a read that trickles bytes would otherwise reset httpx's per-read timeout forever), and
    whatever that makes the reader see is reported as the timeout, never as a complete file."""
    import httpx

    deadline = Deadline.start(timeout)
    expired = threading.Event()
    # httpx's per-read timeout bounds the wait for the headers; the watchdog bounds the rest.
    with httpx.Client(**_client_kwargs(timeout)) as client:  # type: ignore[arg-type]
        request = client.build_request("GET", "/exp", params=exp_params(sql, fmt))
        try:
            response = client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise ExportTimeout(timeout) from exc
        except httpx.TransportError as exc:
            raise ServiceUnavailable("questdb", str(exc) or type(exc).__name__) from exc

        def expire() -> None:
            expired.set()
            with contextlib.suppress(Exception):  # the reader sees an error or an early end; both checked
                response.close()

        watchdog = threading.Timer(max(0.0, deadline.remaining()), expire)
        watchdog.daemon = True
        watchdog.start()
        try:
            if response.status_code != 200:
                raise _error(response.status_code, _read_capped(response, MAX_ERROR_BYTES))

            def pieces() -> Iterator[bytes]:
                # Coalesced here: httpx's own re-chunking (iter_raw(n)) costs more CPU than the read.
                buffer: list[bytes] = []
                size = 0
                try:
                    for piece in response.iter_raw():
                        buffer.append(piece)
                        size += len(piece)
                        if size >= CHUNK:
                            deadline.left()
                            yield b"".join(buffer)
                            buffer, size = [], 0
                    if expired.is_set():
                        raise ExportTimeout(timeout)
                    if buffer:
                        yield b"".join(buffer)
                except ExportTimeout:
                    raise
                except Exception as exc:
                    if expired.is_set():
                        raise ExportTimeout(timeout) from exc
                    if isinstance(exc, httpx.TimeoutException):
                        raise ExportTimeout(timeout) from exc
                    if isinstance(exc, httpx.TransportError):
                        raise ServiceUnavailable("questdb", str(exc) or type(exc).__name__) from exc
                    raise

            yield pieces()
        finally:
            watchdog.cancel()
            response.close()


def _read_capped(response: httpx.Response, limit: int) -> bytes:
    """At most `limit` bytes of a (refusal) body: enough for QuestDB's JSON error, never a whole stream."""
    out = bytearray()
    for piece in response.iter_raw():
        out += piece[: limit - len(out)]
        if len(out) >= limit:
            break
    return bytes(out)
