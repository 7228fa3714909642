"""The local gateway's job routes as ASGI apps, without a server: MinIO's webhook (checks, token,
records handed to the importer in the background) and the invoke route, both closed to browsers
and to everyone when no token is configured."""

from __future__ import annotations

import asyncio
import json

import pytest

from stage1_local.jobs_local import invoke_route, s3_events_route

RECORDS = [{"eventName": "s3:ObjectCreated:Put",
            "s3": {"bucket": {"name": "b"}, "object": {"key": "uploads%2Fx%2Fdata.csv"}}}]


class Recorder:
    def __init__(self, result=None):
        self.calls = []
        self.result = result

    def __call__(self, function, event, wait):
        self.calls.append((function, event, wait))
        return self.result if wait else None


def call(app, method, body=b"", headers=(), query=b""):
    sent = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": "/", "headers": list(headers), "query_string": query}
    asyncio.run(app(scope, receive, send))
    status = sent[0]["status"]
    payload = sent[1].get("body", b"")
    return status, json.loads(payload) if payload else None


TOKEN = "s3cr3t"  # noqa: S105 - a test value
AUTH = [(b"authorization", b"Bearer s3cr3t")]


def test_webhook_answers_minio_checks_and_forwards_records_untouched():
    runner = Recorder()
    app = s3_events_route(runner, TOKEN)
    assert call(app, "HEAD")[0] == 200 and call(app, "GET")[0] == 200
    status, body = call(app, "POST", json.dumps({"EventName": "s3:ObjectCreated:Put", "Records": RECORDS}).encode(),
                        AUTH)
    assert (status, body) == (200, {"accepted": 1})
    # Keys stay URL-encoded here: the importer decodes them, as it does for AWS's events.
    assert runner.calls == [("ImporterFunction", {"Records": RECORDS}, False)]
    assert call(app, "POST", b"{not json", AUTH)[0] == 400
    assert call(app, "POST", b"{}", AUTH) == (200, {"accepted": 0}) and len(runner.calls) == 1
    assert call(app, "PUT", headers=AUTH)[0] == 405


def test_webhook_token_is_required_when_configured():
    runner = Recorder()
    app = s3_events_route(runner, "s3cr3t")
    body = json.dumps({"Records": RECORDS}).encode()
    assert call(app, "POST", body)[0] == 401
    assert call(app, "POST", body, [(b"authorization", b"Bearer wrong")])[0] == 401
    assert call(app, "POST", body, [(b"authorization", b"Bearer s3cr3tX")])[0] == 401
    assert call(app, "POST", body, [(b"authorization", b"Bearer s3cr3t")])[0] == 200
    assert len(runner.calls) == 1
    assert call(app, "HEAD")[0] == 200  # MinIO's reachability check carries no token


def test_invoke_route_background_and_waited():
    runner = Recorder(result={"status": "COMPLETED"})
    app = invoke_route(runner, "ImporterFunction", TOKEN)
    assert call(app, "POST", b'{"job_id": "j"}', AUTH) == (202, {"accepted": True})
    assert call(app, "POST", b'{"job_id": "j"}', AUTH, query=b"wait=1") == (200, {"status": "COMPLETED"})
    assert runner.calls == [("ImporterFunction", {"job_id": "j"}, False), ("ImporterFunction", {"job_id": "j"}, True)]
    assert call(app, "GET", headers=AUTH)[0] == 405


BROWSER = [[(b"origin", b"https://evil.example")], [(b"origin", b"null")],
           [(b"sec-fetch-site", b"cross-site")], [(b"sec-fetch-site", b"same-site")]]


@pytest.mark.parametrize("make", [lambda r: s3_events_route(r, TOKEN),
                                  lambda r: invoke_route(r, "ImporterFunction", TOKEN)])
@pytest.mark.parametrize("browser", BROWSER)
def test_worker_routes_refuse_browser_requests_even_with_the_token(make, browser):
    """A web page can make the user's browser POST to localhost (CSRF): its Origin/Sec-Fetch-Site gives it away."""
    runner = Recorder()
    app = make(runner)
    status, body = call(app, "POST", json.dumps({"Records": RECORDS}).encode(), [*AUTH, *browser])
    assert status == 403 and set(body) == {"error", "details"}
    assert call(app, "HEAD", headers=browser)[0] == 403
    assert runner.calls == []


@pytest.mark.parametrize("make", [lambda r: s3_events_route(r, ""), lambda r: invoke_route(r, "ImporterFunction", "")])
def test_worker_routes_fail_closed_without_a_configured_token(make):
    runner = Recorder()
    app = make(runner)
    for headers in ([], [(b"authorization", b"Bearer ")], [(b"authorization", b"Bearer")]):
        assert call(app, "POST", json.dumps({"Records": RECORDS, "job_id": "j"}).encode(), headers)[0] == 401
    assert call(app, "HEAD")[0] == 401
    assert runner.calls == []


@pytest.mark.parametrize("value", [
    "Bearer s3cr3\u00e9".encode("latin-1"), b"Bearer \xff\xfe", "Bearer s3cr3t\u00e9".encode(), b"bearer s3cr3t",
    b"Bearer s3cr3t ", b"Bearer s3cr3t\x00", b"Bearer " + b"x" * 70_000, b"", b"Basic czNjcjN0",
])
def test_worker_token_abuse_is_a_401_never_an_exception(value):
    """Non-ASCII bytes made hmac.compare_digest(str, str) raise TypeError (a 500) before."""
    runner = Recorder()
    for app in (s3_events_route(runner, TOKEN), invoke_route(runner, "ImporterFunction", TOKEN)):
        status, body = call(app, "POST", b'{"job_id": "j"}', [(b"authorization", value)])
        assert status == 401 and body["error"] == "invalid worker token"
    # Two Authorization headers, even if one is right, are refused.
    assert call(s3_events_route(runner, TOKEN), "POST", b"{}", [*AUTH, (b"authorization", value)])[0] == 401
    assert runner.calls == []
