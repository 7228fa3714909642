"""The Litestar app factory every function uses, and its Lambda entry point (Mangum).

One app per endpoint group: `functions/<group>/app.py` calls `create_app(...)` with its
controllers and exports `handler = make_handler(app)`. Every app gets the same error mapping
(`stage1.web.errors`), request ids and scope guard (`stage1.web.guards`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.types import ASGIApp, Receive, Scope, Send

from stage1.core.logging import configure_logging, get_logger, request_id_var
from stage1.core.settings import get_settings
from stage1.web.errors import handle_exception
from stage1.web.guards import scope_guard

API_VERSION = "1.0.0"
log = get_logger("app")


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    """Tag logs and the response with a request id (API Gateway's when there is one)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        event = scope.get("aws.event") or {}
        rid = (event.get("requestContext") or {}).get("requestId") or _header(scope, b"x-request-id")
        rid = rid or uuid.uuid4().hex
        token = request_id_var.set(rid)

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)

    return middleware


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")[:128]
    return None


def create_app(route_handlers: Sequence[Any], *, title: str, description: str = "", **kwargs: Any) -> Litestar:
    settings = get_settings()
    configure_logging(settings.service.log_level)
    return Litestar(
        route_handlers=list(route_handlers),
        exception_handlers={Exception: handle_exception},
        middleware=[request_id_middleware],
        # The scope check of the authorizer's identity (on AWS the authorizer can only allow/deny).
        guards=[scope_guard, *kwargs.pop("guards", [])],
        request_max_body_size=settings.service.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title=title,
            version=API_VERSION,
            description=description,
            path="/schema",
            render_plugins=[SwaggerRenderPlugin()],
        ),
        debug=False,
        **kwargs,
    )


# Mangum replaces its default list when this is given, so the JSON types must be repeated here.
TEXT_MIME_TYPES = [
    "application/json",
    "application/problem+json",
    "application/vnd.oai.openapi",
    "application/x-ndjson",
    "text/csv",
    "text/plain",
    "text/html",
]


def make_handler(app: Litestar) -> Any:
    """The Lambda handler for one app. `lifespan="off"`: Mangum would otherwise run startup and
    shutdown on every invocation; pools are created lazily and live as long as the process."""
    from mangum import Mangum

    return Mangum(app, lifespan="off", text_mime_types=TEXT_MIME_TYPES)
