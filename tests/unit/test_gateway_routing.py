import asyncio

from stage1_local.gateway import Gateway
from stage1_local.template import Route, path_pattern


def _route(method: str, path: str) -> Route:
    return Route(method, path, "Fn", True, path_pattern(path))


async def _app(scope, receive, send):
    body = f"{scope['method']} {scope['path']}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def _call(gateway: Gateway, method: str, path: str):
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": [], "query_string": b""}
    asyncio.run(gateway(scope, receive, send))
    return sent[0]["status"], dict(sent[0]["headers"]), sent[1]["body"]


def test_routes_to_the_matching_app_and_answers_404_405_with_the_envelope():
    gateway = Gateway(routes=[(_route("GET", "/api/runs/{id}"), _app), (_route("DELETE", "/api/runs/{id}"), _app)])
    assert _call(gateway, "GET", "/api/runs/1") == (200, {}, b"GET /api/runs/1")
    status, _, body = _call(gateway, "GET", "/api/nothing")
    assert status == 404 and b'"error"' in body
    status, headers, body = _call(gateway, "POST", "/api/runs/1")
    assert status == 405 and headers[b"allow"] == b"DELETE, GET"


def test_guards_run_before_the_app():
    from stage1.core.errors import Unauthorized

    async def deny(scope, route):
        return Unauthorized("missing token")

    gateway = Gateway(routes=[(_route("GET", "/api/x"), _app)], guards=[deny])
    status, _, body = _call(gateway, "GET", "/api/x")
    assert status == 401 and b"missing token" in body
