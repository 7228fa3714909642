"""HttpApi (payload format 2.0) events for each API function's first request, shaped like the one API
Gateway sent that is recorded in tests/events/http_api_v2_get_health.json.

The cold-start benchmark and the packaged-function tests send each API function the event in
`tests/events/cold_start/<LogicalId>.json`; a function without one gets a generated event for its
first GET route without path parameters (else its first route), and `record_missing()` writes the
generated ones there (`python -m stage1_local.lambda_events` ) so that they can be reviewed and edited:
give a POST-only function a realistic body by editing its file.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

from stage1_local.template import REPO, Function, Route, functions

EVENTS = REPO / "tests" / "events"
COLD_START = EVENTS / "cold_start"
BASE = EVENTS / "http_api_v2_get_health.json"
# What Stage1TokenAuthorizer hands on (stage1.auth.tokens.Identity.context): an admin token here.
AUTHORIZER_CONTEXT = {"token_id": "00000000-0000-4000-8000-000000000001", "token_name": "cold-start",
                      "scopes": "read write admin"}
PLACEHOLDER_ID = "00000000-0000-4000-8000-00000000cafe"


def pick_route(fn: Function) -> Route:
    """The function's most representative cheap request: a GET list route if it has one."""
    def params(route: Route) -> int:
        return route.path.count("{")

    gets = [r for r in fn.routes if r.method == "GET"]
    for candidates in (sorted(gets, key=params), fn.routes):
        if candidates:
            return candidates[0]
    raise ValueError(f"{fn.name} has no HttpApi route")


def http_api_event(route: Route, *, body: Any = None, query: str = "", request_id: str = "") -> dict[str, Any]:
    event = copy.deepcopy(json.loads(BASE.read_text()))
    path = route.path
    for name in route.pattern.groupindex:
        path = path.replace("{" + name + "+}", PLACEHOLDER_ID).replace("{" + name + "}", PLACEHOLDER_ID)
    route_key = f"{route.method} {route.path}"
    event.update(routeKey=route_key, rawPath=path, rawQueryString=query)
    ctx = event["requestContext"]
    ctx.update(routeKey=route_key, requestId=request_id or f"coldstart-{route.function}")
    ctx["http"].update(method=route.method, path=path)
    if route.pattern.groupindex:
        event["pathParameters"] = {name: PLACEHOLDER_ID for name in route.pattern.groupindex}
    if query:
        event["queryStringParameters"] = dict(kv.split("=", 1) for kv in query.split("&"))
    if route.authorizer:
        ctx["authorizer"] = {"lambda": dict(AUTHORIZER_CONTEXT)}
        event["headers"]["x-stage1-token"] = "s1_redacted"
    if route.method in ("POST", "PUT", "PATCH"):
        event["headers"]["content-type"] = "application/json"
        event["body"] = json.dumps(body if body is not None else {})
        event["headers"]["content-length"] = str(len(event["body"]))
    return event


def event_for(fn: Function) -> dict[str, Any]:
    recorded = COLD_START / f"{fn.name}.json"
    if recorded.is_file():
        return json.loads(recorded.read_text())
    return http_api_event(pick_route(fn))


def record_missing() -> list[Path]:
    COLD_START.mkdir(parents=True, exist_ok=True)
    written = []
    for fn in functions().values():
        target = COLD_START / f"{fn.name}.json"
        if fn.routes and fn.package_type != "Image" and not target.exists():
            target.write_text(json.dumps(event_for(fn), indent=2) + "\n")
            written.append(target)
    return written


if __name__ == "__main__":
    for path in record_missing():
        print(f"wrote {path.relative_to(REPO)}")
    sys.exit(0)
