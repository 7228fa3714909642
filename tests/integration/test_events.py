"""GET /api/events: job updates in Postgres reach an SSE client through the gateway (migration 0010's
NOTIFY → the gateway's LISTEN connection → the stream)."""

from __future__ import annotations

import queue
import threading
import time

import httpx
import pytest
from client_support import cancel_leftover_jobs, new_job

from stage1.jobs import service as jobs
from stage1_client import Client
from stage1_client.sse import JobEvent, Message, parse

OWNER = "test-events"


@pytest.fixture(autouse=True)
def _tidy_jobs():
    yield
    cancel_leftover_jobs()


class Stream:
    """Read an event stream in a thread; `ready` is set once the subscription is live."""

    def __init__(self, url: str, headers: dict[str, str], params: dict) -> None:
        self.items: queue.Queue = queue.Queue()
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.response_info: dict = {}
        self.thread = threading.Thread(target=self._run, args=(url, headers, params), daemon=True)
        self.thread.start()
        assert self.ready.wait(10), f"no ready event: {self.response_info}"

    def _run(self, url: str, headers: dict[str, str], params: dict) -> None:
        with httpx.stream("GET", f"{url}/api/events", headers=headers, params=params, timeout=30) as r:
            self.response_info = {"status": r.status_code, "content_type": r.headers.get("content-type")}
            for message in parse(r.iter_lines()):
                if message.event == "ready":
                    self.ready.set()
                self.items.put(message)
                if self.stop.is_set():
                    return

    def events(self, count: int, timeout: float = 10) -> list[Message]:
        out, deadline = [], time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            try:
                message = self.items.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if message.event == "job":
                out.append(message)
        return out

    def until(self, job_id: str, status: str, timeout: float = 10) -> list[JobEvent]:
        """This job's events, up to the first with `status` (other tests' jobs pass by too)."""
        out, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in _job_events(self.events(1, timeout=max(0.01, deadline - time.monotonic()))):
                if event.job_id == job_id:
                    out.append(event)
                    if event.status == status:
                        return out
        return out

    def close(self) -> None:
        self.stop.set()


def _job_events(messages: list[Message]) -> list[JobEvent]:
    import msgspec

    return [msgspec.json.decode(m.data, type=JobEvent) for m in messages]


def test_job_updates_arrive_as_events_in_order(gateway_url, api_headers):
    stream = Stream(gateway_url, api_headers, {"heartbeat": 1})
    assert stream.response_info["status"] == 200
    assert stream.response_info["content_type"].startswith("text/event-stream")
    job_id = new_job(total=100)
    assert jobs.claim(job_id, OWNER) is not None
    jobs.report_progress(job_id, OWNER, 50)
    jobs.report_progress(job_id, OWNER, 50)  # a lease renewal alone: no event
    assert jobs.complete(job_id, OWNER, {"rows": 100}, progress=100)
    seen = stream.until(job_id, "COMPLETED")
    stream.close()
    assert [(e.status, e.progress, e.total) for e in seen] == [
        ("PENDING", 0, 100), ("RUNNING", 0, 100), ("RUNNING", 50, 100), ("COMPLETED", 100, 100)]
    assert all(e.job_type == "client_test" for e in seen)


def test_job_id_filter_and_heartbeat(gateway_url, api_headers):
    watched, other = new_job(), new_job()
    stream = Stream(gateway_url, api_headers, {"job_id": watched, "heartbeat": 0.2})
    jobs.claim(other, OWNER)
    jobs.claim(watched, OWNER)
    jobs.fail(other, OWNER, "not watched")
    jobs.fail(watched, OWNER, "boom")
    seen = _job_events(stream.events(2, timeout=5))
    assert [(e.job_id, e.status) for e in seen] == [(watched, "RUNNING"), (watched, "FAILED")]
    assert stream.events(1, timeout=0.6) == []  # nothing about the other job
    time.sleep(0.5)
    comments = []
    while not stream.items.empty():
        message = stream.items.get()
        if message.event is None:
            comments.append(message.comment)
    stream.close()
    assert "heartbeat" in comments


def test_events_need_a_token_with_read_scope(gateway_url, settings, unique):
    r = httpx.get(f"{gateway_url}/api/events", timeout=10)
    assert r.status_code == 401 and set(r.json()) == {"error", "details"}
    r = httpx.post(f"{gateway_url}/api/auth/token", headers={"X-Stage1-Admin-Secret": settings.auth.admin_secret},
                   json={"name": f"events-write-only-{unique}", "scopes": ["write"], "expires_in": 600}, timeout=30)
    token = r.json()["token"]
    r = httpx.get(f"{gateway_url}/api/events", headers={"X-Stage1-Token": token}, timeout=10)
    assert r.status_code == 403, r.text
    assert r.json()["details"]["required"] == "read"


@pytest.mark.parametrize("query", ["job_id=not-a-uuid", "heartbeat=0", "heartbeat=soon"])
def test_bad_parameters_are_400(gateway_url, api_headers, query):
    r = httpx.get(f"{gateway_url}/api/events?{query}", headers=api_headers, timeout=10)
    assert r.status_code == 400, r.text
    assert r.json()["error"]


def test_client_event_iterator(gateway_url, api_token):
    job_id = new_job()
    received: queue.Queue = queue.Queue()

    def consume() -> None:
        with Client(gateway_url, api_token) as c:
            for item in c.jobs.events([job_id], heartbeat=1):
                received.put(item)
                if isinstance(item, JobEvent) and item.status == "CANCELLED":
                    return

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    first = received.get(timeout=10)
    assert isinstance(first, Message) and first.event == "ready"
    with Client(gateway_url, api_token) as c:
        cancelled = c.jobs.cancel(job_id)
    assert cancelled.status == "CANCELLED"
    event = received.get(timeout=10)
    thread.join(10)
    assert isinstance(event, JobEvent) and (event.job_id, event.status) == (job_id, "CANCELLED")
