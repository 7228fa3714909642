"""The local gateway's job routes as ASGI apps, without a server: MinIO's webhook (checks, token,
records handed to the importer in the background) and the invoke route."""

from __future__ import annotations

import asyncio
import json

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


def test_webhook_answers_minio_checks_and_forwards_records_untouched():
    runner = Recorder()
    app = s3_events_route(runner)
    assert call(app, "HEAD")[0] == 200 and call(app, "GET")[0] == 200
    status, body = call(app, "POST", json.dumps({"EventName": "s3:ObjectCreated:Put", "Records": RECORDS}).encode())
    assert (status, body) == (200, {"accepted": 1})
    # Keys stay URL-encoded here: the importer decodes them, as it does for AWS's events.
    assert runner.calls == [("ImporterFunction", {"Records": RECORDS}, False)]
    assert call(app, "POST", b"{not json")[0] == 400
    assert call(app, "POST", b"{}") == (200, {"accepted": 0}) and len(runner.calls) == 1
    assert call(app, "PUT")[0] == 405


def test_webhook_token_is_required_when_configured():
    runner = Recorder()
    app = s3_events_route(runner, "s3cr3t")
    body = json.dumps({"Records": RECORDS}).encode()
    assert call(app, "POST", body)[0] == 401
    assert call(app, "POST", body, [(b"authorization", b"Bearer wrong")])[0] == 401
    assert call(app, "POST", body, [(b"authorization", b"Bearer s3cr3t")])[0] == 200
    assert len(runner.calls) == 1
    assert call(app, "HEAD")[0] == 200  # MinIO's reachability check carries no token


def test_invoke_route_background_and_waited():
    runner = Recorder(result={"status": "COMPLETED"})
    app = invoke_route(runner, "ImporterFunction")
    assert call(app, "POST", b'{"job_id": "j"}') == (202, {"accepted": True})
    assert call(app, "POST", b'{"job_id": "j"}', query=b"wait=1") == (200, {"status": "COMPLETED"})
    assert runner.calls == [("ImporterFunction", {"job_id": "j"}, False), ("ImporterFunction", {"job_id": "j"}, True)]
    assert call(app, "GET")[0] == 405
