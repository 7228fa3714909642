"""The one job worker (stage1.jobs.worker) against the real Postgres jobs table: a fake piece of
work stands in for the import or export, everything else (claim, lease, release with backoff,
fail, cancel, complete) is the code the importer and the exporter run. The jobs get a type no
function runs, so the shared stack's sweepers never dispatch them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import msgspec
import pytest

from stage1.core import db
from stage1.core.errors import ServiceUnavailable
from stage1.jobs import service as jobs
from stage1.jobs.worker import JobFailed, Lease, Outcome, run_job

JOB_TYPE = "worker-test"


class Done(msgspec.Struct):
    rows: int
    note: str | None = None


class FakeWork:
    prefix = "worker-test"

    def __init__(self, body: Callable[[jobs.Job, Lease], Any], *, heartbeat: float | None = None,
                 early: Outcome | None = None) -> None:
        self.body, self.heartbeat_seconds, self.early = body, heartbeat, early
        self.stops: list[str] = []
        self.ran = False

    def before_claim(self, job: jobs.Job) -> Outcome | None:
        return self.early

    def run(self, job: jobs.Job, lease: Lease) -> Any:
        self.ran = True
        return self.body(job, lease)

    def stopped(self, job: jobs.Job, why: str) -> None:
        self.stops.append(why)


@pytest.fixture
def job_id():
    with db.connection() as conn:
        job = jobs.create_job(conn, JOB_TYPE, {"test": "worker"}, idempotency_key=f"worker-test:{uuid.uuid4()}",
                              created_by=None)
    yield job.job_id
    with db.connection() as conn:  # nothing of the test stays PENDING/RUNNING
        conn.execute("update stage1_jobs set status = 'CANCELLED', lease_owner = null, lease_expires_at = null "
                     "where job_id = %s and status in ('PENDING', 'RUNNING')", (job.job_id,))


def row(job_id: str) -> dict[str, Any]:
    with db.connection() as conn:
        return conn.execute(
            "select status, error, result, progress, attempts, lease_owner, retry_at, outage_since, "
            "retry_at > now() as backing_off from stage1_jobs where job_id = %s", (job_id,)).fetchone()


def test_completed_with_the_typed_result_encoded_to_json(job_id):
    def body(job, lease):
        lease.progress(5, 10)
        lease.count(10)
        return Done(rows=10)

    outcome = run_job(job_id, FakeWork(body))
    assert outcome.status == jobs.COMPLETED and outcome.result == {"rows": 10, "note": None}
    r = row(job_id)
    assert (r["status"], r["result"], r["progress"], r["attempts"], r["lease_owner"]) == (
        "COMPLETED", {"rows": 10, "note": None}, 10, 1, None)


@pytest.mark.parametrize("error, service", [
    (ServiceUnavailable("questdb", "connection refused"), "questdb"),
    (httpx.ConnectError("connection refused"), "questdb"),  # a driver's error, classified by service_of
])
def test_a_transient_error_releases_the_job_with_backoff(job_id, error, service):
    def body(job, lease):
        lease.progress(3)
        raise error

    work = FakeWork(body)
    outcome = run_job(job_id, work)
    assert (outcome.status, outcome.service) == ("PENDING", service)
    assert work.stops == ["released"]
    r = row(job_id)
    assert r["status"] == "PENDING" and r["lease_owner"] is None
    assert r["error"].startswith(f"{service} unavailable: ") and r["backing_off"] and r["outage_since"] is not None
    # Released, not failed: the next attempt may claim it (after its backoff the sweeper dispatches it).
    again = run_job(job_id, FakeWork(lambda job, lease: Done(rows=1)))
    assert again.status == "COMPLETED" and row(job_id)["attempts"] == 2


def test_a_transient_error_past_the_outage_deadline_fails_the_job(job_id, monkeypatch):
    with db.connection() as conn:  # an outage that began 20 minutes ago (the default deadline: 10)
        conn.execute("update stage1_jobs set outage_since = now() - interval '20 minutes' where job_id = %s",
                     (job_id,))

    def body(job, lease):
        raise ServiceUnavailable("object store", "no answer")

    outcome = run_job(job_id, FakeWork(body))
    assert outcome.status == "PENDING"  # what this invocation did: it gave the job back
    r = row(job_id)
    assert r["status"] == "FAILED" and "gave up: still failing" in r["error"], r


def test_a_permanent_error_fails_the_job_with_its_message(job_id):
    def body(job, lease):
        lease.progress(2)
        raise JobFailed("row 3: timestamp is not a number", result={"error_details": {"row": 3}},
                        details={"row": 3})

    work = FakeWork(body)
    outcome = run_job(job_id, work)
    assert (outcome.status, outcome.error, outcome.details) == ("FAILED", "row 3: timestamp is not a number",
                                                                {"row": 3})
    assert work.stops == ["failed"]
    r = row(job_id)
    assert (r["status"], r["error"], r["result"]) == ("FAILED", "row 3: timestamp is not a number",
                                                      {"error_details": {"row": 3}})


def test_an_unexpected_error_fails_the_job_as_internal(job_id):
    def body(job, lease):
        raise KeyError("measurement")

    work = FakeWork(body)
    assert run_job(job_id, work).status == "FAILED" and work.stops == ["failed"]
    assert row(job_id)["error"] == "internal error: KeyError: 'measurement'"


def test_cancel_mid_way_stops_at_the_next_progress_report_and_calls_the_cleanup_hook(job_id):
    reached = []

    def body(job, lease):
        lease.progress(1)
        jobs.cancel(job.job_id)  # the user's DELETE /api/jobs/{id}, while the work runs
        lease.progress(2)
        reached.append("after the cancel")
        return Done(rows=2)

    work = FakeWork(body)
    outcome = run_job(job_id, work)
    assert outcome.status == "CANCELLED" and work.stops == ["cancelled"] and reached == []
    r = row(job_id)
    assert (r["status"], r["progress"], r["result"]) == ("CANCELLED", 1, None)


def test_cancel_is_seen_by_the_lease_thread_of_silent_work(job_id):
    """Work that reports nothing for a while (an export waiting for its first byte): the worker's
    heartbeat thread renews the lease, notices the cancel, and the work's next check() stops it."""
    def body(job, lease):
        jobs.cancel(job.job_id)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            lease.check()
            time.sleep(0.05)
        return Done(rows=0, note="never noticed")

    work = FakeWork(body, heartbeat=0.2)
    started = time.monotonic()
    assert run_job(job_id, work).status == "CANCELLED"
    assert time.monotonic() - started < 5 and work.stops == ["cancelled"]


def test_a_lost_lease_writes_no_completion(job_id):
    def body(job, lease):
        with db.connection() as conn:  # the lease expired and another worker claimed the job
            conn.execute("update stage1_jobs set lease_owner = 'someone-else' where job_id = %s", (job.job_id,))
        return Done(rows=7)

    run_job(job_id, FakeWork(body))
    r = row(job_id)
    assert (r["status"], r["lease_owner"], r["result"], r["progress"]) == ("RUNNING", "someone-else", None, 0)


def test_a_lost_lease_seen_at_a_progress_report_stops_without_writing(job_id):
    def body(job, lease):
        with db.connection() as conn:
            conn.execute("update stage1_jobs set lease_owner = 'someone-else' where job_id = %s", (job.job_id,))
        lease.progress(9)
        return Done(rows=9)

    work = FakeWork(body)
    assert run_job(job_id, work).status == "RUNNING" and work.stops == ["lost"]
    r = row(job_id)
    assert (r["status"], r["lease_owner"], r["progress"], r["error"]) == ("RUNNING", "someone-else", 0, None)


def test_a_job_that_is_not_pending_is_skipped_and_before_claim_can_keep_it_pending(job_id):
    waiting = FakeWork(lambda job, lease: Done(rows=1), early=Outcome(job_id=job_id, status="PENDING",
                                                                      reason="object not uploaded yet"))
    assert run_job(job_id, waiting).reason == "object not uploaded yet" and not waiting.ran
    assert row(job_id)["status"] == "PENDING"
    assert run_job(job_id, FakeWork(lambda job, lease: Done(rows=1))).status == "COMPLETED"
    again = FakeWork(lambda job, lease: Done(rows=1))
    outcome = run_job(job_id, again)
    assert (outcome.status, outcome.skipped, again.ran) == ("COMPLETED", True, False)
    assert run_job(str(uuid.uuid4()), FakeWork(lambda job, lease: None)).status == "UNKNOWN"


def test_a_note_about_the_input_is_recorded_in_the_payload_before_the_work_sees_the_job(job_id):
    seen = []
    run_job(job_id, FakeWork(lambda job, lease: seen.append(job.payload) or Done(rows=0)), note={"ready": True})
    assert seen == [{"test": "worker", "ready": True}]
