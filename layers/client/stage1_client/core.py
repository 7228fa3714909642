"""`Core`: the HTTP plumbing of the client (one pool, the retry policy, decoding, streamed downloads).

Every other module of the client builds on this one and this one imports none of them, so the
modules form no circle: `api.Client` is a `Core` holding the resources, each resource takes the `Core`.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self, TypeVar

import httpx
import msgspec

from stage1_client.config import resolve
from stage1_client.errors import ApiError
from stage1_client.retry import RetryPolicy
from stage1_wire.auth import TOKEN_HEADER
from stage1_wire.jobs import JobAccepted, JobOut

T = TypeVar("T")
USER_AGENT = "stage1-client/0.1"
# Bytes read and written per chunk when streaming files to and from disk.
CHUNK = 1024 * 1024
BytesCallback = Callable[[int, int | None], None]  # (bytes so far, total or None)


def query(**kwargs: Any) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in kwargs.items() if v is not None}


def segment(value: Any) -> str:
    """A path segment: ids and slugs are [a-z0-9_-] and UUIDs; anything else is refused here."""
    text = str(value)
    if not text or any(not (c.isascii() and (c.isalnum() or c in "-_")) for c in text):
        raise ApiError(0, f"not an id or slug: {text[:64]!r}")
    return text


class Core:
    """One connection pool to the gateway and the calls every resource makes through it: retries,
    decoding into the wire Structs, streaming downloads. Thread-safe for concurrent calls (httpx's pool).

    The resource classes (`stage1_client.resources`, `.jobs`, `.uploads`) take a `Core`; `Client`
    (`stage1_client.api`) is the `Core` that holds them all."""

    def __init__(self, url: str | None = None, token: str | None = None, *, timeout: float = 60.0,
                 retries: int = 3, retry: RetryPolicy | None = None, profile: str | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        resolved = resolve(url=url, token=token, profile=profile)
        self.url = resolved.url
        self.token = resolved.token
        self.config_source = resolved.source
        # `retries` (extra tries) is the older knob; `retry` the whole policy.
        self.retry = retry or RetryPolicy(attempts=max(1, retries + 1))
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if self.token:
            headers[TOKEN_HEADER] = self.token
        self.http = httpx.Client(base_url=self.url, headers=headers, transport=transport,
                                 timeout=httpx.Timeout(timeout, connect=10.0))
        self._store: httpx.Client | None = None

    # -- plumbing
    @property
    def store(self) -> httpx.Client:
        """A client for presigned object-store URLs: no token (the URL is the credential)."""
        if self._store is None:
            self._store = httpx.Client(timeout=httpx.Timeout(300.0, connect=10.0),
                                       headers={"User-Agent": USER_AGENT})
        return self._store

    def close(self) -> None:
        self.http.close()
        if self._store is not None:
            self._store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    def _send(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None,
              stream: bool = False, timeout: float | None = None, safe: bool = False) -> httpx.Response:
        """One request under the client's one retry policy (`stage1_client.retry`): refused connections
        and 429 for any method, 502/503/504 and dropped connections for idempotent methods or a
        request marked `safe`; bounded in attempts and total time. Failure: one `ApiError`."""
        content = None if body is None else msgspec.json.encode(body)
        headers = {"Content-Type": "application/json"} if content is not None else None
        started = time.monotonic()
        attempt = 0
        while True:
            request = self.http.build_request(method, path, params=params, content=content, headers=headers,
                                              timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT)
            try:
                response = self.http.send(request, stream=stream)
            except httpx.TransportError as exc:
                wait = self.retry.decide(attempt, started, method, safe=safe, error=exc)
                if wait is not None:
                    time.sleep(wait)
                    attempt += 1
                    continue
                tries = f" (after {attempt + 1} tries)" if attempt else ""
                raise ApiError(0, f"cannot reach {self.url}: {type(exc).__name__}: {exc}".rstrip(": ") + tries,
                               method=method, url=str(request.url)) from exc
            if response.is_success:
                return response
            body_bytes = response.read()
            response.close()
            wait = self.retry.decide(attempt, started, method, safe=safe, status=response.status_code,
                                     retry_after=response.headers.get("Retry-After"))
            if wait is not None:
                time.sleep(wait)
                attempt += 1
                continue
            raise ApiError.from_response(response.status_code, body_bytes, method=method, url=str(request.url),
                                         headers=dict(response.headers), reason=response.reason_phrase)

    def request(self, method: str, path: str, type: type[T], *, params: dict[str, Any] | None = None,
                body: Any = None, safe: bool = False) -> T:
        """A JSON call decoded into `type` (a Struct, or `dict`/`Any` for raw JSON). `safe=True` marks a
        non-idempotent method as safe to repeat (a read-only POST), so the retry policy covers it."""
        response = self._send(method, path, params=params, body=body, safe=safe)
        return self.decode(response, type)

    @staticmethod
    def decode(response: httpx.Response, type: type[T]) -> T:
        try:
            return msgspec.json.decode(response.content, type=type)
        except msgspec.ValidationError as exc:
            raise ApiError(response.status_code, f"unexpected response from {response.request.url.path}: {exc}",
                           method=response.request.method, url=str(response.request.url)) from exc
        except msgspec.DecodeError as exc:
            raise ApiError(response.status_code, f"not JSON from {response.request.url.path}: "
                           f"{response.text[:120]!r}") from exc

    @contextmanager
    def stream(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None,
               timeout: float | None = None, safe: bool = False) -> Iterator[httpx.Response]:
        response = self._send(method, path, params=params, body=body, stream=True, timeout=timeout, safe=safe)
        try:
            yield response
        finally:
            response.close()

    def download(self, method: str, path: str, dest: str | os.PathLike[str], *, params: dict[str, Any] | None = None,
                 body: Any = None, on_bytes: BytesCallback | None = None,
                 on_job: Callable[[JobOut], None] | None = None, job_timeout: float | None = None,
                 safe: bool = False) -> Path:
        """Stream a large read to `dest` (written to `dest.part`, renamed when complete).

        The large-read contract (docs/questdb.md): 200 is the file itself; 202 is an export job
        whose finished `result.url` is a presigned download URL — followed here, so the caller
        gets the file either way."""
        dest = Path(dest)
        tmp = dest.with_name(dest.name + ".part")
        with self.stream(method, path, params=params, body=body, timeout=300.0, safe=safe) as response:
            if response.status_code == 202:
                response.read()
                accepted = self.decode(response, JobAccepted)
                job = self.watch_job(accepted.job_id, on_update=on_job, timeout=job_timeout)
                if job.status != "COMPLETED":
                    raise ApiError(0, f"export job {job.job_id} {job.status}: {job.error or 'no error text'}",
                                   {"job_id": job.job_id, "status": job.status})
                url = (job.result or {}).get("url") if isinstance(job.result, dict) else None
                if not url:
                    raise ApiError(0, f"export job {job.job_id} has no result.url", {"result": job.result})
                with self.store.stream("GET", url) as remote:
                    if remote.is_error:
                        raise ApiError.from_response(remote.status_code, remote.read(), method="GET",
                                                     reason=remote.reason_phrase)
                    _write(remote, tmp, on_bytes)
            else:
                _write(response, tmp, on_bytes)
        tmp.replace(dest)
        return dest

    def watch_job(self, job_id: str, *, on_update: Callable[[JobOut], None] | None = None,
                  timeout: float | None = None) -> JobOut:
        """Follow a job to its end: what `download` does with a 202. `Client` follows it with
        `Client.jobs.watch` (events or polling); a bare `Core` cannot."""
        raise ApiError(0, f"{job_id}: this read became an export job; follow it with Client.jobs.watch",
                       {"job_id": job_id})


def _write(response: httpx.Response, tmp: Path, on_bytes: BytesCallback | None) -> None:
    length = response.headers.get("Content-Length")
    total = int(length) if length and length.isdigit() and "content-encoding" not in response.headers else None
    done = 0
    try:
        with open(tmp, "wb") as out:
            for chunk in response.iter_bytes(CHUNK):
                out.write(chunk)
                done += len(chunk)
                if on_bytes:
                    on_bytes(done, total)
    except httpx.TransportError as exc:
        tmp.unlink(missing_ok=True)
        raise ApiError(0, f"download interrupted after {done} bytes: {exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class Resource:
    """A resource's calls, made through one `Core`."""

    def __init__(self, client: Core) -> None:
        self.client = client


def pages(fetch: Callable[[int], Any], items: str, page: int) -> Iterator[Any]:
    offset = 0
    while True:
        result = fetch(offset)
        batch = getattr(result, items)
        yield from batch
        offset += len(batch)
        if not batch or offset >= result.total:
            return


def cursor_pages(fetch: Callable[[str | None], Any], items: str) -> Iterator[Any]:
    """Every item of a cursor-paged list: each page's `next_cursor` fetches the next, until None."""
    cursor: str | None = None
    while True:
        result = fetch(cursor)
        yield from getattr(result, items)
        cursor = result.next_cursor
        if cursor is None:
            return


def flag(value: bool | None) -> str | None:
    return None if value is None else ("true" if value else "false")
