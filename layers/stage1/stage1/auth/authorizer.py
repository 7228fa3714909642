"""The HttpApi Lambda authorizer (payload format 2.0, simple responses), shared code.

`functions/authorizer/handler.py` exposes `authorize` to API Gateway; the local gateway calls that
same handler with the same kind of event before routing. The answer is `{"isAuthorized": bool,
"context": {...}}`; on success the context carries the token's id, name and scopes, which API
Gateway hands to the function as `requestContext.authorizer.lambda`. Simple responses can only
allow or deny, so scopes are checked after it (by the gateway locally, by every function on AWS:
stage1.auth.scopes). On a deny the context holds the reason; AWS drops it, the local gateway
shows it in its 401.
"""

from __future__ import annotations

import logging
from typing import Any

from stage1.auth.tokens import authenticate
from stage1.core.errors import Unauthorized
from stage1.core.logging import get_logger, log_fields
from stage1_wire.auth import TOKEN_HEADER

log = get_logger("authorizer")


def token_of(event: dict[str, Any]) -> str | None:
    """The token: the identity source (API Gateway fills it from `$request.header.X-Stage1-Token`),
    else the header itself (payload 2.0 lowercases header names). Anything but a string is no
    token (a deny, never an exception); two headers arrive comma-joined and fail the shape check."""
    sources = event.get("identitySource") or []
    if isinstance(sources, list) and sources and isinstance(sources[0], str) and sources[0]:
        return sources[0]
    headers = event.get("headers") or {}
    token = headers.get(TOKEN_HEADER.lower()) if isinstance(headers, dict) else None
    return token if isinstance(token, str) else None


def authorize(event: dict[str, Any]) -> dict[str, Any]:
    """Allow a known, unexpired, unrevoked token; deny anything else. Backing-service errors
    propagate (API Gateway answers 500, the local gateway 503): a database outage is not a deny."""
    try:
        identity = authenticate(token_of(event))
    except Unauthorized as exc:
        log_fields(log, logging.INFO, "denied", route=event.get("routeKey"), reason=exc.message)
        return {"isAuthorized": False, "context": {"reason": exc.message}}
    return {"isAuthorized": True, "context": identity.context()}
