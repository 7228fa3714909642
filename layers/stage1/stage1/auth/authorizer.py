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

from stage1.auth.credentials import AUTHORIZATION_HEADER, presented_token
from stage1.auth.events import AuthorizerEvent, decode_authorizer_event
from stage1.auth.tokens import authenticate
from stage1.core.errors import Unauthorized
from stage1.core.logging import get_logger, log_fields
from stage1_wire.auth import TOKEN_HEADER

log = get_logger("authorizer")


def token_of(event: AuthorizerEvent | dict[str, Any] | None) -> str | None:
    """The token the request presents, read from its headers (payload 2.0 lowercases their names)
    by `stage1.auth.credentials.presented_token`: `Authorization: Bearer <token>` or
    `X-Stage1-Token`. The identity source is only a fallback for an event without those headers
    (template.yaml lists none, so that both headers work: docs/auth.md). Raises `Unauthorized` for a
    malformed Authorization header or two different tokens. An event of another shape (a
    non-string token, say) has no token: a deny, never an exception. Repeated headers arrive
    comma-joined and fail the token's shape check."""
    ev = decode_authorizer_event(event)
    if ev is None:
        return None
    headers = ev.headers or {}
    token = presented_token(headers.get(TOKEN_HEADER.lower()), headers.get(AUTHORIZATION_HEADER.lower()))
    if token is None and ev.identitySource and ev.identitySource[0]:
        return ev.identitySource[0]
    return token


def authorize(event: AuthorizerEvent | dict[str, Any]) -> dict[str, Any]:
    """Allow a known, unexpired, unrevoked token; deny anything else. Backing-service errors
    propagate (API Gateway answers 500, the local gateway 503): a database outage is not a deny."""
    ev = decode_authorizer_event(event)
    try:
        identity = authenticate(token_of(ev))  # the reason logged below never holds the token
    except Unauthorized as exc:
        log_fields(log, logging.INFO, "denied", route=ev.routeKey if ev else None, reason=exc.message)
        return {"isAuthorized": False, "context": {"reason": exc.message}}
    return {"isAuthorized": True, "context": identity.context()}
