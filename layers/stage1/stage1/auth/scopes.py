"""Which scope a request needs, and the in-app check of the scopes the authorizer passed on.

Rule (the same locally and on AWS): token management (`/api/auth/tokens...`) needs `admin`;
GET/HEAD/OPTIONS need `read`, and so do the POST routes that only read (`READ_ONLY_POSTS`);
every other method needs `write`. Scopes do not imply each other: a token has what it lists.
"""

from __future__ import annotations

from typing import Any

from stage1.core.errors import Forbidden, Stage1Error

ADMIN_PREFIX = "/api/auth/tokens"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# POST only because the input is a body (SQL text): they run read-only queries.
READ_ONLY_POSTS = frozenset({"/api/questdb/query", "/api/questdb/export"})


def required_scope(method: str, path: str) -> str:
    if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
        return "admin"
    if method.upper() in READ_METHODS or (method.upper() == "POST" and path.rstrip("/") in READ_ONLY_POSTS):
        return "read"
    return "write"


def authorizer_context(scope: dict[str, Any]) -> dict[str, Any] | None:
    """What the authorizer passed on (`requestContext.authorizer.lambda` of the HttpApi event),
    or None on a route without the authorizer."""
    event = scope.get("aws.event") or {}
    ctx = ((event.get("requestContext") or {}).get("authorizer") or {}).get("lambda")
    return ctx if isinstance(ctx, dict) else None


def scopes_of(ctx: dict[str, Any]) -> set[str]:
    raw = ctx.get("scopes") or ""
    return set(raw.split()) if isinstance(raw, str) else {str(s) for s in raw}


def check_scope(method: str, path: str, ctx: dict[str, Any]) -> Stage1Error | None:
    needed = required_scope(method, path)
    have = scopes_of(ctx)
    if needed in have:
        return None
    return Forbidden(f"this token lacks the '{needed}' scope", {"required": needed, "scopes": sorted(have)})


def scope_guard(connection: Any, _handler: Any = None) -> None:
    """Litestar guard of every function (stage1.core.app): refuse (403) a request whose token, as
    the authorizer passed it on, lacks the scope the request needs. Without authorizer context (a
    public route, or auth turned off locally) it lets the request through: the gateway decides
    which routes are public."""
    scope = connection.scope
    if scope["type"] == "http" and (ctx := authorizer_context(scope)) is not None:
        error = check_scope(scope["method"], scope["path"], ctx)
        if error is not None:
            raise error
