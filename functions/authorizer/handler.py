"""HttpApi Lambda authorizer: payload format 2.0, simple responses, no identity source and no cache
(template.yaml, `Stage1TokenAuthorizer`), so it runs on every request and reads the token from
`Authorization: Bearer` or `X-Stage1-Token` (stage1.auth.credentials). The local gateway runs this
same handler before routing. The event is decoded once here; one of another shape is denied
(logged). See docs/auth.md for what a client sees where."""

from typing import Any

from stage1.auth.authorizer import authorize
from stage1.auth.events import AuthorizerEvent, decode_authorizer_event


def handler(event: Any, context: Any = None) -> dict[str, Any]:
    match decode_authorizer_event(event):
        case AuthorizerEvent() as ev:
            return authorize(ev)
        case _:
            return {"isAuthorized": False, "context": {"reason": "not an authorizer request"}}
