"""The scope guard every app runs (wired in by `stage1.web.app.create_app`); the rule itself is the
auth package's (`stage1.auth.scopes`)."""

from __future__ import annotations

from typing import Any

from stage1.auth.scopes import authorizer_context, caller_of, check_scope, current_caller


async def scope_guard(connection: Any, _handler: Any = None) -> None:
    """Refuse (403) a request whose token, as the authorizer passed it on, lacks the scope the
    request needs. Without authorizer context (a public route, or auth turned off locally) it lets
    the request through: the gateway decides which routes are public. Async on purpose: Litestar
    runs sync guards on a worker thread, where `current_caller` would not reach the handler."""
    scope = connection.scope
    if scope["type"] != "http":
        return
    ctx = authorizer_context(scope)
    current_caller.set(caller_of(scope))
    if ctx is not None and (error := check_scope(scope["method"], scope["path"], ctx)) is not None:
        raise error


def request_caller(request: Any) -> Any:
    """The caller of a request (`stage1.auth.scopes.Caller`, or None without authorizer context)."""
    return caller_of(request.scope)
