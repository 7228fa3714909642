"""What Lambda and S3 do for jobs on AWS, done by the local gateway (docs/imports.md):

- `POST /_local/s3-events`: MinIO's bucket-notification webhook. MinIO checks the target with a
  HEAD (answered 200); a POST carries S3-shaped `Records` (checked by decoding them as an
  `S3Event`; forwarded as they came, keys URL-encoded, decoded by the importer exactly as for AWS
  events). The importer runs in the background and the webhook
  returns at once. With `webhook_token` set, MinIO's `Authorization: Bearer <token>` is required.
- `POST /_local/invoke/<LogicalName>`: `stage1.jobs.dispatch.invoke_async` from processes outside
  a gateway; the function's handler runs in the background (`?wait=1`: run and answer its result).
  The body must be an event that function takes (`EVENT_DECODERS`), else 400.
  Inside the gateway process, dispatch calls the same runner directly.
- The sweeper (functions/sweeper/handler.py, scheduled on AWS) as a background loop.

These routes bypass the authorizer like AWS's internal invocations do, so they guard themselves
(`refusal`): the gateway listens on loopback only, but a web page the user visits can still send
requests to localhost, so any request with a browser's `Origin` or `Sec-Fetch-Site` (other than
`none`) is refused (403); every POST needs `Authorization: Bearer <STAGE1_WEBHOOK_TOKEN>` (MinIO
sends it, `dispatch` too), compared in constant time; and with no token configured every request
is refused (fail closed). Only MinIO's tokenless reachability check (HEAD/GET) passes.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgspec

from stage1.core.logging import get_logger, log_fields
from stage1.core.settings import get_settings
from stage1.imports.events import decode_importer_event
from stage1.jobs import dispatch
from stage1.jobs.events import ScheduledEvent, decode_as, decode_job_event
from stage1_local.template import functions, load_handler

log = get_logger("gateway.jobs")
S3_EVENTS = "/_local/s3-events"
INVOKE = "/_local/invoke/"
IMPORTER = "ImporterFunction"
SWEEPER = "SweeperFunction"


class LocalContext:
    """The bits of Lambda's context object the handlers read."""

    def __init__(self, function: str) -> None:
        self.aws_request_id = f"local-{uuid.uuid4().hex[:16]}"
        self.function_name = function

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 900_000


class Runner:
    """Runs function handlers on threads, as Lambda would run invocations: background invocations on
    one pool (`importer_concurrency` at a time, 2 by default: the machine's cores; the chunks of an
    upload fan out over it as over the importer's reserved concurrency on AWS), waited-for ones on
    another so that a blocking import never queues behind a long upload."""

    def __init__(self) -> None:
        self.background = ThreadPoolExecutor(max_workers=get_settings().jobs.importer_concurrency,
                                             thread_name_prefix="invoke")
        self.waited = ThreadPoolExecutor(max_workers=4, thread_name_prefix="invoke-sync")

    def __call__(self, function: str, event: dict[str, Any], wait: bool) -> Any:
        fn = functions().get(function)
        if fn is None:
            raise ValueError(f"no function {function} in template.yaml")
        if wait:
            return self.waited.submit(self.run, function, event).result(timeout=300)
        self.background.submit(self.run, function, event)
        return None

    @staticmethod
    def run(function: str, event: dict[str, Any]) -> Any:
        try:
            result = load_handler(functions()[function])(event, LocalContext(function))
            return json.loads(json.dumps(result, default=str))  # what Lambda would return: JSON
        except Exception:
            log.exception("local invocation failed", extra={"fields": {"function": function}})
            raise


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _decode(body: bytes) -> dict[str, Any] | None:
    """A Lambda event is a JSON object (an empty body: `{}`); None if the body is not one."""
    try:
        return msgspec.json.decode(body or b"{}", type=dict[str, Any])
    except msgspec.DecodeError:
        return None


# The typed event each worker function takes (its handler decodes it the same way): an event of
# another shape is refused here with a 400 rather than started in the background and ignored.
EVENT_DECODERS: dict[str, Callable[[Any], Any]] = {
    IMPORTER: decode_importer_event,
    "ExporterFunction": decode_job_event,
    SWEEPER: lambda event: decode_as(event, ScheduledEvent),
}


async def _reply(send: Any, status: int, payload: Any = None) -> None:
    body = b"" if payload is None else json.dumps(payload, default=str).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _headers(scope: dict[str, Any], name: bytes) -> list[bytes]:
    return [value for key, value in scope.get("headers") or [] if key.lower() == name]


def refusal(scope: dict[str, Any], token: str, *, probe: bool = False) -> tuple[int, str] | None:
    """Why a worker-route request is refused (status, message), or None. `probe`: a tokenless
    reachability check (MinIO's HEAD) that starts no work."""
    if _headers(scope, b"origin") or any(v.strip().lower() != b"none" for v in _headers(scope, b"sec-fetch-site")):
        return 403, "browser requests are refused on the local worker routes"
    if not token:
        return 401, "local worker routes are closed: STAGE1_WEBHOOK_TOKEN is not set"
    if probe:
        return None
    given = _headers(scope, b"authorization")
    # Raw bytes, so a non-ASCII header cannot raise; exactly one header, compared in constant time.
    if len(given) != 1 or not hmac.compare_digest(given[0], b"Bearer " + token.encode()):
        return 401, "invalid worker token"
    return None


async def _refused(scope: dict[str, Any], send: Any, token: str, *, probe: bool = False) -> bool:
    if (why := refusal(scope, token, probe=probe)) is None:
        return False
    await _reply(send, why[0], {"error": why[1], "details": None})
    return True


def s3_events_route(runner: Any, token: str = "") -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        method = scope["method"]
        if await _refused(scope, send, token, probe=method in ("HEAD", "GET")):
            return
        if method in ("HEAD", "GET"):  # MinIO's reachability check
            await _reply(send, 200)
            return
        if method != "POST":
            await _reply(send, 405, {"error": "method not allowed", "details": None})
            return
        payload = _decode(await _body(receive))
        if payload is None:
            await _reply(send, 400, {"error": "webhook body is not a JSON object", "details": None})
            return
        records = payload.get("Records")
        # Decoded once here to decide (a shape other than S3 records is logged and not forwarded);
        # the importer is sent the records as they came, keys still URL-encoded, like on AWS.
        if records and decode_importer_event({"Records": records}) is not None:
            runner(IMPORTER, {"Records": records}, False)
            log_fields(log, 20, "s3 event", records=len(records), key=payload.get("Key"))
        elif records:
            log_fields(log, 30, "webhook body without S3 ObjectCreated records: ignored", key=payload.get("Key"))
            records = []
        await _reply(send, 200, {"accepted": len(records or [])})

    return app


def invoke_route(runner: Any, function: str, token: str = "") -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if await _refused(scope, send, token):
            return
        if scope["method"] != "POST":
            await _reply(send, 405, {"error": "method not allowed", "details": None})
            return
        event = _decode(await _body(receive))
        decode = EVENT_DECODERS.get(function)
        if event is None or (decode is not None and decode(event) is None):
            await _reply(send, 400, {"error": f"not an event {function} takes", "details": None})
            return
        if b"wait=1" in scope.get("query_string", b""):
            try:
                result = await asyncio.to_thread(runner, function, event, True)
            except Exception as exc:
                await _reply(send, 502, {"error": f"{function} failed: {type(exc).__name__}", "details": None})
                return
            await _reply(send, 200, result)
            return
        runner(function, event, False)
        await _reply(send, 202, {"accepted": True})

    return app


def sweeper_loop() -> Any:
    async def loop() -> None:
        handler = load_handler(functions()[SWEEPER])
        while True:
            try:
                await asyncio.to_thread(handler, {"source": "local.sweeper"}, LocalContext(SWEEPER))
            except Exception:
                log.exception("sweep failed")
            await asyncio.sleep(get_settings().jobs.sweep_interval_seconds)

    return loop


def install(gateway: Any) -> Runner:
    runner = Runner()
    dispatch.set_local_runner(runner)
    token = get_settings().auth.webhook_token
    if not token:
        log.warning("STAGE1_WEBHOOK_TOKEN is not set: the local worker routes (/_local/...) refuse every request")
    gateway.local_routes[S3_EVENTS] = s3_events_route(runner, token)
    for name in functions():
        gateway.local_routes[INVOKE + name] = invoke_route(runner, name, token)
    if SWEEPER in functions():
        gateway.background.append(sweeper_loop())
    return runner
