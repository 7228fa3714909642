"""Live job events on the local gateway: `GET /api/events`, Server-Sent Events fed by Postgres.

Migration 0010 makes every job insert, and every update of a job's status/progress/total, send
`{"job_id", "job_type", "status", "progress", "total"}` on the channel `stage1_jobs` (NOTIFY is
delivered on commit). The gateway holds ONE listening connection (`Broker.run`, a background loop
of the gateway, reconnecting with a back-off) and fans each payload out to the subscribed streams.

The stream, in order:

    retry: 3000
    event: ready               <- the subscription is live: read the job's state now, then follow
    data: {"listening": true, "job_ids": [...]}

    id: 17
    event: job
    data: {"job_id": "...", "job_type": "import", "status": "RUNNING", "progress": 5000, "total": 9000}

    : heartbeat                <- a comment every `heartbeat` seconds (default 15) keeps proxies open

`?job_id=<uuid>` (repeatable) keeps only those jobs. The route takes the same token and scope
(`read`) as every other GET: the gateway's guards run first. A stream shows only the jobs its token
may see, as `GET /api/jobs/{id}` does: the ones it created (migration 0013 puts `created_by` in each
notification), every job for an admin token; `created_by` itself is not sent on. While the listener is not connected
(Postgres down) the route answers 503; when the listener drops, open streams end, so a client
reconnects or falls back to polling `GET /api/jobs/{id}` — which is the contract everywhere (the
serverless deployment has no SSE: Mangum buffers responses). A stream that falls more than
`QUEUE_SIZE` events behind is ended the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from stage1.auth.scopes import Caller, caller_of
from stage1.core.errors import BadRequest, ServiceUnavailable
from stage1.core.logging import get_logger
from stage1.core.settings import get_settings
from stage1_local.asgi import send_error
from stage1_local.template import Route, path_pattern

log = get_logger("gateway.events")

PATH = "/api/events"
CHANNEL = "stage1_jobs"
QUEUE_SIZE = 1000
HEARTBEAT_SECONDS = 15.0
RETRY_MS = 3000
MAX_FILTER_IDS = 100
# The gateway's guards (authorizer, scope, rate limit) see this route like a template route.
ROUTE = Route("GET", PATH, "LocalEvents", True, path_pattern(PATH))
_CLOSED = object()


@dataclass(eq=False)
class Subscriber:
    job_ids: frozenset[str] | None
    # Whose stream it is (None: auth turned off, nothing to filter by).
    caller: Caller | None = None
    queue: asyncio.Queue[Any] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))

    def wants(self, event: dict[str, Any]) -> bool:
        if self.caller is not None and not self.caller.sees(event.get("created_by")):
            return False
        return self.job_ids is None or str(event.get("job_id")) in self.job_ids

    def close(self) -> None:
        """End the stream after what is queued (listener lost, or this subscriber fell behind)."""
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(_CLOSED)


@dataclass
class Broker:
    dsn: str
    subscribers: set[Subscriber] = field(default_factory=set)
    listening: bool = False
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def subscribe(self, job_ids: frozenset[str] | None, caller: Caller | None = None) -> Subscriber:
        sub = Subscriber(job_ids, caller)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def publish(self, payload: str) -> None:
        try:
            event = json.loads(payload)
        except ValueError:
            log.warning("ignoring a malformed job notification: %.200s", payload)
            return
        if not isinstance(event, dict):
            return
        creator = event.pop("created_by", None)  # for filtering only: not part of the event's contract
        item = (next(self._ids), event)
        for sub in list(self.subscribers):
            if not sub.wants({**event, "created_by": creator}):
                continue
            try:
                sub.queue.put_nowait(item)
            except asyncio.QueueFull:  # a stuck client: end its stream rather than hold memory
                self._evict(sub)

    def _evict(self, sub: Subscriber) -> None:
        """Unsubscribe and end the stream. A full queue is dropped first: the client reads the job
        again when it reconnects, so nothing it needs is lost."""
        self.unsubscribe(sub)
        if sub.queue.full():
            sub.queue = asyncio.Queue(1)
        sub.close()

    def _drop_all(self) -> None:
        for sub in list(self.subscribers):
            self._evict(sub)

    async def run(self) -> None:
        """The gateway's background loop: LISTEN, publish, reconnect (1 s back-off doubling to 10 s)."""
        import psycopg

        delay = 1.0
        while True:
            try:
                # Named after the gateway's process, so it is easy to find in pg_stat_activity.
                async with await psycopg.AsyncConnection.connect(
                        self.dsn, autocommit=True, application_name=f"stage1-gateway-events-{os.getpid()}") as conn:
                    await conn.execute(f"listen {CHANNEL}")
                    self.listening, delay = True, 1.0
                    log.info("listening for job events on channel %s", CHANNEL)
                    async for notify in conn.notifies():
                        self.publish(notify.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("job event listener lost (%s); retrying in %.0f s", str(exc).splitlines()[0][:200], delay)
            finally:
                if self.listening:
                    self.listening = False
                    self._drop_all()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


def parse_query(query_string: bytes) -> tuple[frozenset[str] | None, float]:
    """`job_id` (repeatable, UUIDs) and `heartbeat` (seconds, 0.1-60)."""
    query = parse_qs(query_string.decode("latin-1"), keep_blank_values=True)
    ids = set()
    for raw in query.get("job_id", []):
        try:
            ids.add(str(uuid.UUID(raw)))
        except ValueError:
            raise BadRequest("job_id must be a UUID", {"job_id": raw[:64]}) from None
    if len(ids) > MAX_FILTER_IDS:
        raise BadRequest(f"at most {MAX_FILTER_IDS} job_id filters", {"count": len(ids)})
    heartbeat = HEARTBEAT_SECONDS
    if raw_hb := query.get("heartbeat"):
        try:
            heartbeat = float(raw_hb[-1])
        except ValueError:
            heartbeat = -1.0
        if not 0.1 <= heartbeat <= 60:
            raise BadRequest("heartbeat must be a number of seconds between 0.1 and 60", {"heartbeat": raw_hb[-1]})
    return (frozenset(ids) if ids else None), heartbeat


def sse(event: str | None = None, data: Any = None, *, id: int | None = None, comment: str | None = None) -> bytes:
    lines = []
    if comment is not None:
        lines.append(f": {comment}")
    if id is not None:
        lines.append(f"id: {id}")
    if event is not None:
        lines.append(f"event: {event}")
    if data is not None:
        lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


def make_route(gateway: Any, broker: Broker) -> Any:
    async def events(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            from stage1.core.errors import HttpError

            await send_error(send, HttpError(405, "method not allowed", {"allowed": ["GET"]}, {"Allow": "GET"}))
            return
        for guard in gateway.guards:
            if (error := await guard(scope, ROUTE)) is not None:
                await send_error(send, error)
                return
        try:
            job_ids, heartbeat = parse_query(scope.get("query_string", b""))
        except BadRequest as exc:
            await send_error(send, exc)
            return
        if not broker.listening:
            await send_error(send, ServiceUnavailable("postgres", "job events are not available right now; "
                                                      "poll GET /api/jobs/{id}"))
            return
        sub = broker.subscribe(job_ids, caller_of(scope))
        disconnected = asyncio.Event()

        async def watch_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            disconnected.set()

        watcher = asyncio.create_task(watch_disconnect())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-store"),
                (b"x-accel-buffering", b"no")]})
            if scope["method"] == "HEAD":
                await send({"type": "http.response.body", "body": b""})
                return
            hello = {"listening": True, "job_ids": sorted(job_ids) if job_ids else None, "heartbeat": heartbeat}
            await send({"type": "http.response.body", "body": f"retry: {RETRY_MS}\n".encode() + sse("ready", hello),
                        "more_body": True})
            gone = asyncio.create_task(disconnected.wait())
            while True:
                getter = asyncio.create_task(sub.queue.get())
                done, _ = await asyncio.wait({getter, gone}, timeout=heartbeat, return_when=asyncio.FIRST_COMPLETED)
                if gone in done:
                    getter.cancel()
                    break
                if getter not in done:
                    getter.cancel()
                    chunk = sse(comment="heartbeat")
                else:
                    item = getter.result()
                    if item is _CLOSED:
                        await send({"type": "http.response.body", "body": sse("closed", {"reason": "reconnect"})})
                        return
                    chunk = sse("job", item[1], id=item[0])
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            gone.cancel()
        except OSError:  # the client went away mid-send
            pass
        finally:
            broker.unsubscribe(sub)
            watcher.cancel()

    return events


def install(gateway: Any) -> Broker:
    """Register `GET /api/events` and the listening loop on the gateway."""
    broker = Broker(get_settings().postgres.pg_dsn)
    gateway.local_routes[PATH] = make_route(gateway, broker)
    gateway.background.append(broker.run)
    return broker
