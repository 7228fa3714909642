"""HttpApi Lambda authorizer: payload format 2.0, simple responses, identity source
`$request.header.X-Stage1-Token` (template.yaml, `Stage1TokenAuthorizer`). The local gateway runs
this same handler before routing. See docs/auth.md for what a client sees where."""

from typing import Any

from stage1.auth.authorizer import authorize


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return authorize(event)
