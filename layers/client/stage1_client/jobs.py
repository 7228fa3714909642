"""Jobs: get, list, cancel, retry, and `watch` — Server-Sent Events where the deployment offers
`GET /api/events` (the local gateway, containers), polling `GET /api/jobs/{id}` everywhere else
(the serverless deployment: Mangum buffers responses, so there is no SSE on Lambda)."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import msgspec

from stage1_client.core import Core, query
from stage1_client.errors import ApiError
from stage1_client.sse import JobEvent, Message, parse
from stage1_wire.jobs import JobList, JobOut

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
EVENTS_PATH = "/api/events"
# The heartbeat the client asks for: a silent stream is noticed within ~3 heartbeats.
HEARTBEAT = 5.0
# While following events, the job is also read this often (a missed notification costs at most this).
RESYNC_SECONDS = 30.0
OnUpdate = Callable[[JobOut], None]


class EventsUnavailable(Exception):  # noqa: N818 - a signal to fall back to polling
    """This deployment (or right now) has no event stream."""


class Jobs:
    def __init__(self, client: Core) -> None:
        self.client = client
        # None: not tried yet; False: the deployment has no /api/events (do not ask again).
        self.events_supported: bool | None = None

    def get(self, job_id: str | uuid.UUID) -> JobOut:

        return self.client.request("GET", f"/api/jobs/{_job_ref(job_id)}", JobOut)

    def list(self, *, status: str | None = None, job_type: str | None = None, limit: int = 50,
             offset: int = 0) -> JobList:

        return self.client.request("GET", "/api/jobs", JobList, params=query(
            status=status, job_type=job_type, limit=limit, offset=offset))

    def cancel(self, job_id: str | uuid.UUID) -> JobOut:

        return self.client.request("POST", f"/api/jobs/{_job_ref(job_id)}/cancel", JobOut)

    def retry(self, job_id: str | uuid.UUID) -> JobOut:

        return self.client.request("POST", f"/api/jobs/{_job_ref(job_id)}/retry", JobOut)

    # -- live events
    def events(self, job_ids: list[str] | None = None, *, heartbeat: float = HEARTBEAT,
               include_heartbeats: bool = False) -> Iterator[JobEvent | Message]:
        """Job events as they happen (`JobEvent`), until the stream ends. The first item is the
        `ready` message: from then on nothing is missed. Raises `EventsUnavailable` when the
        deployment has no event stream (404/405/501, or not `text/event-stream`) or cannot serve one
        right now (429/503)."""
        params: dict[str, Any] = {"heartbeat": heartbeat}
        if job_ids:
            params["job_id"] = [_job_ref(j) for j in job_ids]
        timeout = httpx.Timeout(connect=10.0, read=max(3 * heartbeat, 10.0), write=10.0, pool=10.0)
        try:
            with self.client.http.stream("GET", EVENTS_PATH, params=params, timeout=timeout,
                                         headers={"Accept": "text/event-stream"}) as response:
                if response.status_code in (404, 405, 429, 501, 503) or (
                        response.is_success and not response.headers.get("content-type", "").startswith(
                            "text/event-stream")):
                    if response.status_code not in (429, 503):  # those two are only for now
                        self.events_supported = False
                    raise EventsUnavailable(f"{response.status_code} from {EVENTS_PATH}")
                if response.is_error:
                    raise ApiError.from_response(response.status_code, response.read(), method="GET",
                                                 url=str(response.url), reason=response.reason_phrase)
                self.events_supported = True
                for message in parse(response.iter_lines()):
                    if message.event == "job":
                        try:
                            yield msgspec.json.decode(message.data, type=JobEvent)
                        except msgspec.MsgspecError:
                            continue
                    elif message.event is not None or include_heartbeats:
                        yield message
        except httpx.TransportError as exc:
            raise EventsUnavailable(f"event stream failed: {type(exc).__name__}") from exc

    # -- following one job
    def watch(self, job_id: str | uuid.UUID, *, on_update: OnUpdate | None = None, timeout: float | None = None,
              poll_interval: float = 1.0, use_events: bool = True,
              on_idle: Callable[[JobOut, float], None] | None = None) -> JobOut:
        """Follow a job until it is COMPLETED, FAILED or CANCELLED and return its final record.

        `on_update(job)` sees every state change (from events: the last full record with the new
        status/progress/total). `on_idle(job, seconds)` is called while nothing happens (the
        uploads use it to nudge an import whose object-store event may be lost). A `timeout`
        (seconds) raises `ApiError` (status 0) with the last state in `details`."""
        job_id = _job_ref(job_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        # Heartbeats are when a quiet stream looks at the deadline: a short timeout wants them often.
        heartbeat = HEARTBEAT if timeout is None else min(HEARTBEAT, max(0.5, timeout / 4))
        if use_events and self.events_supported is not False:
            for _ in range(5):  # a stream that ends ("closed": listener lost) is re-opened a few times
                try:
                    job = self._follow_events(job_id, on_update, deadline, on_idle, heartbeat)
                except EventsUnavailable:
                    break
                if job is not None:
                    return job
        return self._poll(job_id, on_update, deadline, poll_interval, on_idle)

    def _follow_events(self, job_id: str, on_update: OnUpdate | None, deadline: float | None,
                       on_idle: Callable[[JobOut, float], None] | None, heartbeat: float) -> JobOut | None:
        """The final job, or None when the stream ended before it finished."""
        last_change = time.monotonic()
        with contextlib.closing(self.events([job_id], heartbeat=heartbeat, include_heartbeats=True)) as stream:
            return self._consume(stream, job_id, on_update, deadline, on_idle, last_change)

    def _consume(self, stream: Iterator[JobEvent | Message], job_id: str, on_update: OnUpdate | None,
                 deadline: float | None, on_idle: Callable[[JobOut, float], None] | None,
                 started: float) -> JobOut | None:
        job: JobOut | None = None
        last_change = last_sync = started
        for item in stream:
            now = time.monotonic()
            if isinstance(item, Message) and item.event == "ready":
                job = self._emit(self.get(job_id), on_update)  # subscribed first, then read: nothing is missed
                last_change = last_sync = now
            elif isinstance(item, JobEvent) and job is not None:
                if (item.status, item.progress, item.total) != (job.status, job.progress, job.total):
                    job = self._emit(msgspec.structs.replace(
                        job, status=item.status, progress=item.progress, total=item.total), on_update)
                    last_change = now
                if item.status in TERMINAL:
                    job = self._emit(self.get(job_id), on_update)  # the result / error
            elif isinstance(item, Message) and item.event == "closed":
                return None
            if job is None:
                continue
            if job.status not in TERMINAL and now - last_sync >= RESYNC_SECONDS:
                job, last_sync = self._sync(job, on_update), now
            if job.status in TERMINAL:
                return job
            _check_deadline(job, deadline)
            if on_idle is not None and now - last_change >= 1.0:
                on_idle(job, now - last_change)
        return None

    def _poll(self, job_id: str, on_update: OnUpdate | None, deadline: float | None, interval: float,
              on_idle: Callable[[JobOut, float], None] | None) -> JobOut:
        job: JobOut | None = None
        last_change = time.monotonic()
        delay = min(interval, 0.25)
        while True:
            current = self.get(job_id)
            if job is None or _changed(job, current):
                job, last_change, delay = self._emit(current, on_update), time.monotonic(), min(interval, 0.25)
            if job.status in TERMINAL:
                return job
            _check_deadline(job, deadline)
            if on_idle is not None:
                on_idle(job, time.monotonic() - last_change)
            time.sleep(delay)
            delay = min(delay * 2, interval)  # quick first looks, then the caller's interval

    def _sync(self, job: JobOut, on_update: OnUpdate | None) -> JobOut:
        current = self.get(job.job_id)
        return self._emit(current, on_update) if _changed(job, current) else current

    @staticmethod
    def _emit(job: JobOut, on_update: OnUpdate | None) -> JobOut:
        if on_update is not None:
            on_update(job)
        return job


def _changed(old: JobOut, new: JobOut) -> bool:
    return (old.status, old.progress, old.total, old.updated_at) != (new.status, new.progress, new.total,
                                                                      new.updated_at)


def _check_deadline(job: JobOut, deadline: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise ApiError(0, f"gave up waiting for job {job.job_id}: still {job.status}",
                       {"job_id": job.job_id, "status": job.status, "progress": job.progress, "total": job.total})


def _job_ref(job_id: str | uuid.UUID) -> str:
    try:
        return str(uuid.UUID(str(job_id)))
    except ValueError:
        raise ApiError(0, f"not a job id: {str(job_id)[:64]!r}", {"job_id": str(job_id)[:64]}) from None
