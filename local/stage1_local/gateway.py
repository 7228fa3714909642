"""The local gateway: what API Gateway (HttpApi) and S3 do on AWS, on one machine without Docker.

It reads `template.yaml`, mounts every function's Litestar app at its HttpApi routes and forwards
requests to it as ASGI (so large responses can stream locally). Extension points, in order:
`local_routes` (things that exist only locally, e.g. the object store's webhook), `guards` (the
authorizer, CORS and rate limits, run before routing like API Gateway's), and `background`
(loops such as the job sweeper, started with the server).

Run: `python -m stage1_local.gateway` (`make dev` does this after `make up`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from stage1.core.errors import HttpError, NotFound, Stage1Error
from stage1.core.logging import configure_logging, get_logger
from stage1.core.settings import get_settings
from stage1_local.asgi import send_error
from stage1_local.template import Route, functions, load_app

# The largest request line + headers the local server buffers (see main()).
REQUEST_HEAD_MAX_BYTES = 1 << 20

log = get_logger("gateway")

ASGIApp = Callable[[dict[str, Any], Callable[..., Awaitable[Any]], Callable[..., Awaitable[Any]]], Awaitable[None]]
# A guard sees the request before routing; it returns an error to stop it, or None to go on.
Guard = Callable[[dict[str, Any], Route | None], Awaitable[Stage1Error | None]]
Background = Callable[[], Awaitable[None]]


@dataclass
class Gateway:
    routes: list[tuple[Route, ASGIApp]]
    local_routes: dict[str, ASGIApp] = field(default_factory=dict)
    guards: list[Guard] = field(default_factory=list)
    background: list[Background] = field(default_factory=list)
    # ASGI middleware around every HTTP request, outermost first (CORS: stage1_local.security).
    middleware: list[Callable[[ASGIApp], ASGIApp]] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        app: ASGIApp = self._dispatch
        for wrap in reversed(self.middleware):
            app = wrap(app)
        await app(scope, receive, send)

    async def _dispatch(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (local := self.local_routes.get(scope["path"])) is not None:
            await local(scope, receive, send)
            return
        route, app, error = self._match(scope["method"], scope["path"])
        for guard in self.guards:
            if error is None:
                error = await guard(scope, route)
        if error is not None or app is None:
            await send_error(send, error or NotFound("no such route"))
            return
        await app(scope, receive, send)

    def _match(self, method: str, path: str) -> tuple[Route | None, ASGIApp | None, Stage1Error | None]:
        allowed = []
        for route, app in self.routes:
            if route.pattern.match(path):
                if route.method in (method, "ANY"):
                    return route, app, None
                # A greedy `{proxy+}` (the web app's GET catch-all) matches every path: like API Gateway,
                # another method on a path only it matches is no route (404), not a 405.
                if "+}" not in route.path:
                    allowed.append(route.method)
        if allowed:
            # CORS preflights must reach the guards; API Gateway answers them before routing.
            if method == "OPTIONS":
                return None, None, None
            return None, None, HttpError(405, "method not allowed", {"allowed": sorted(allowed)},
                                         {"Allow": ", ".join(sorted(allowed))})
        return None, None, NotFound("no such route", {"path": path})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._tasks = [asyncio.create_task(_forever(job)) for job in self.background]
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in self._tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _forever(job: Background) -> None:
    """Keep a background loop alive: log and restart it if it crashes."""
    while True:
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background task crashed; restarting in 5 s")
            await asyncio.sleep(5)


def build_gateway() -> Gateway:
    """Every function of the template, mounted; later pieces register their guards and loops here."""
    routes: list[tuple[Route, ASGIApp]] = []
    for fn in functions().values():
        if not fn.routes:
            continue
        app = load_app(fn)
        routes += [(route, app) for route in fn.routes]
    # Literal paths before parameterised ones, as API Gateway prefers the most specific route; a greedy
    # `{proxy+}` (the web client's catch-all) only after every other route, so /api/* keeps winning.
    routes.sort(key=lambda item: ("+}" in item[0].path, item[0].path.count("{"), -len(item[0].path)))
    gateway = Gateway(routes=routes)
    # Authorizer, scopes, CORS, rate limits (docs/auth.md); the merged OpenAPI spec and its docs page.
    from stage1_local import openapi, security

    security.install(gateway)
    openapi.install(gateway)
    # GET /api/events: live job events (SSE) from Postgres LISTEN/NOTIFY (docs/client.md).
    from stage1_local import events

    events.install(gateway)
    # MinIO's webhook → importer, /_local/invoke/<Function> (invoke_async), the job sweeper (docs/imports.md).
    from stage1_local import jobs_local

    jobs_local.install(gateway)
    return gateway


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="Stage1 local gateway")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args()
    settings = get_settings()
    configure_logging(settings.service.log_level)
    gateway = build_gateway()
    log.info("gateway on http://%s:%d with %d routes", args.host, args.port, len(gateway.routes))
    # Open event streams (/api/events) never end on their own: give them 2 s on shutdown.
    # h11 refuses a request line or header block that arrives in pieces past 16 KiB with a bare
    # text/plain 400 before any app sees it; 1 MiB lets the functions answer long queries with their
    # own envelope (their parameters carry the real bounds). On AWS, API Gateway parses requests.
    uvicorn.run(gateway, host=args.host, port=args.port, log_level="warning", lifespan="on",
                timeout_graceful_shutdown=2, h11_max_incomplete_event_size=REQUEST_HEAD_MAX_BYTES)


if __name__ == "__main__":
    main()
