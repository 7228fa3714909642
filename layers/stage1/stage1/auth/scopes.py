"""Which scope a request needs, and the in-app check of the scopes the authorizer passed on.

Rule (the same locally and on AWS): token management (`/api/auth/tokens...`) needs `admin`;
GET/HEAD/OPTIONS need `read`, and so do the POST routes that only read (`READ_ONLY_POSTS`);
every other method needs `write`. Scopes do not imply each other: a token has what it lists.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Caller:
    """The token a request came with, as the authorizer passed it on: what it may see of records
    that belong to a token (jobs: stage1.jobs.service)."""

    token_id: str | None
    admin: bool

    def sees(self, owner: str | None) -> bool:
        """Admins see everything; other tokens only what they created (never an owner-less record)."""
        return self.admin or (owner is not None and self.token_id is not None and str(owner) == self.token_id)


def caller_of(scope: dict[str, Any]) -> Caller | None:
    """The request's caller, or None without authorizer context (a public route, or auth turned
    off locally: nothing to tell callers apart by, so nothing is filtered)."""
    ctx = authorizer_context(scope)
    if ctx is None:
        return None
    token_id = ctx.get("token_id")
    return Caller(str(token_id) if token_id else None, "admin" in scopes_of(ctx))


# The caller of the request being served, set by `stage1.web.guards.scope_guard` (so in every
# function, for the whole request, including its sync handlers' threads).
# `stage1.jobs.service.create_job` records it as the job's creator without every caller threading it.
current_caller: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("stage1_caller", default=None)
