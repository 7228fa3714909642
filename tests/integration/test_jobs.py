"""The jobs service against the real Postgres: atomic claims, leases, the sweeper, cancel/retry.
Each test uses its own job_type so it never touches other tests' (or engineers') jobs."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter

import pytest

from stage1.core import db
from stage1.jobs import service as jobs
from stage1.jobs.sweeper import sweep_once


@pytest.fixture
def job_type(unique):
    name = f"zz_test_{unique}"
    yield name
    with db.connection() as conn:
        conn.execute("delete from stage1_jobs where job_type = %s", (name,))


def _create(job_type: str, n: int, **kw) -> list[jobs.Job]:
    with db.connection() as conn:
        return [jobs.create_job(conn, job_type, {"i": i}, **kw) for i in range(n)]


def test_eight_concurrent_claimers_run_each_of_1000_jobs_exactly_once(job_type):
    created = _create(job_type, 1_000)
    runs: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker(k: int) -> None:
        owner = f"w{k}"
        start.wait()
        while (job := jobs.claim_next(job_type, owner, 60)) is not None:
            with lock:
                runs[job.job_id] += 1
            assert jobs.complete(job.job_id, owner, {"by": owner})

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(runs) == 1_000 and set(runs.values()) == {1}
    assert set(runs) == {j.job_id for j in created}
    done, total = jobs.list_jobs(status="COMPLETED", job_type=job_type, limit=1000, offset=0)
    assert total == 1_000 and all(j.attempts == 1 for j in done)


def test_concurrent_claims_of_one_job_have_one_winner(job_type):
    (job,) = _create(job_type, 1)
    results = []
    barrier = threading.Barrier(8)

    def claim(k: int) -> None:
        barrier.wait()
        results.append(jobs.claim(job.job_id, f"w{k}", 60))

    threads = [threading.Thread(target=claim, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and winners[0].attempts == 1 and winners[0].status == "RUNNING"


def test_idempotency_key_returns_the_same_job(job_type, unique):
    with db.connection() as conn:
        a = jobs.create_job(conn, job_type, {"x": 1}, idempotency_key=f"key-{unique}")
        b = jobs.create_job(conn, job_type, {"x": 2}, idempotency_key=f"key-{unique}")
    assert a.job_id == b.job_id and b.payload == {"x": 1}


def test_progress_extends_the_lease_and_only_the_owner_moves_the_job(job_type):
    (job,) = _create(job_type, 1)
    claimed = jobs.claim(job.job_id, "me", 2)
    jobs.report_progress(job.job_id, "me", 10, 100, lease_seconds=60)
    now = jobs.get_job(job.job_id)
    assert (now.progress, now.total) == (10, 100) and now.lease_expires_at > claimed.lease_expires_at
    with pytest.raises(jobs.JobAborted):
        jobs.report_progress(job.job_id, "someone-else", 11)
    assert not jobs.complete(job.job_id, "someone-else", {})
    assert jobs.complete(job.job_id, "me", {"ok": True}, progress=100)
    assert jobs.get_job(job.job_id).status == "COMPLETED"


def test_cancel_stops_a_running_worker_at_its_next_progress_report(job_type):
    (job,) = _create(job_type, 1)
    jobs.claim(job.job_id, "me", 60)
    assert jobs.cancel(job.job_id).status == "CANCELLED"
    with pytest.raises(jobs.JobAborted) as stopped:
        jobs.report_progress(job.job_id, "me", 5)
    assert stopped.value.status == "CANCELLED"
    assert not jobs.complete(job.job_id, "me", {})  # a late completion cannot overwrite the cancel


def test_sweeper_requeues_expired_leases_then_fails_after_max_attempts(job_type):
    (job,) = _create(job_type, 1, max_attempts=2)
    for attempt in (1, 2):
        claimed = jobs.claim(job.job_id, f"dead-worker-{attempt}", 1)
        assert claimed is not None and claimed.attempts == attempt
        time.sleep(1.2)
        jobs.sweep()  # (a gateway's sweeper loop may have swept it first: same outcome)
        assert jobs.get_job(job.job_id).status == ("PENDING" if attempt == 1 else "FAILED")
    final = jobs.get_job(job.job_id)
    assert final.status == "FAILED" and "lease expired" in final.error and final.attempts == 2
    retried = jobs.retry(job.job_id)
    assert retried.status == "PENDING" and retried.max_attempts == 2 + jobs.RETRY_ATTEMPTS
    assert jobs.claim(job.job_id, "w", 60).attempts == 3


def test_sweep_once_dispatches_nothing_for_unknown_types(job_type):
    _create(job_type, 3)
    out = sweep_once({})
    assert set(out) == {"requeued", "failed", "redispatched", "stale_dispatched", "waiting", "chunked_expired",
                        "chunks_redispatched"}
    pending, total = jobs.list_jobs(status="PENDING", job_type=job_type, limit=10, offset=0)
    assert total == 3


# ---------------------------------------------------------------- who may see a job (issue 11)
def _mint(gateway_url: str, secret: str, name: str, scopes: list[str]) -> dict:
    import httpx

    r = httpx.post(f"{gateway_url}/api/auth/token", headers={"X-Stage1-Admin-Secret": secret},
                   json={"name": name, "scopes": scopes, "expires_in": 900}, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
def two_tokens(gateway_url, settings, unique):
    """Two ordinary tokens (read, write): the creator and a stranger."""
    return [_mint(gateway_url, settings.auth.admin_secret, f"jobs-{who}-{unique}", ["read", "write"])
            for who in ("creator", "stranger")]


class _EventReader:
    """GET /api/events in a thread: every `job` event's data, once the stream said `ready`."""

    def __init__(self, gateway_url: str, token: str) -> None:
        import json

        import httpx

        self.seen: list[dict] = []
        self.ready = threading.Event()
        self.stop = threading.Event()

        def run() -> None:
            with httpx.stream("GET", f"{gateway_url}/api/events", params={"heartbeat": 0.2},
                              headers={"X-Stage1-Token": token}, timeout=30) as r:
                assert r.status_code == 200
                event = None
                for line in r.iter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                        self.ready.set() if event == "ready" else None
                    elif line.startswith("data: ") and event == "job":
                        self.seen.append(json.loads(line[6:]))
                    if self.stop.is_set():
                        return

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert self.ready.wait(10), "the event stream did not open"

    def statuses(self, job_id: str) -> list[str]:
        return [e["status"] for e in self.seen if e["job_id"] == job_id]


def test_a_job_and_its_download_url_are_shown_only_to_its_creator_and_admins(
        gateway_url, client, two_tokens, settings):
    import httpx

    from stage1.core import storage

    creator, stranger = two_tokens
    as_creator = httpx.Client(base_url=gateway_url, headers={"X-Stage1-Token": creator["token"]}, timeout=60)
    as_stranger = httpx.Client(base_url=gateway_url, headers={"X-Stage1-Token": stranger["token"]}, timeout=60)
    creator_events, stranger_events = _EventReader(gateway_url, creator["token"]), _EventReader(
        gateway_url, stranger["token"])
    r = as_creator.post("/api/questdb/export", params={"mode": "job"}, json={"sql": "select x from long_sequence(50)"})
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    try:
        deadline = time.monotonic() + 60
        while (job := as_creator.get(f"/api/jobs/{job_id}").json())["status"] not in ("COMPLETED", "FAILED"):
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
        assert job["status"] == "COMPLETED" and job["result"]["url"].startswith("http"), job
        with db.connection() as conn:
            row = conn.execute("select created_by from stage1_jobs where job_id = %s", (job_id,)).fetchone()
        assert str(row["created_by"]) == creator["token_id"]

        # The stranger: 404 exactly like a job that does not exist, and nothing in lists.
        missing = as_stranger.get(f"/api/jobs/{uuid.uuid4()}")
        for path in (f"/api/jobs/{job_id}", f"/api/questdb/jobs/{job_id}"):
            r = as_stranger.get(path)
            assert r.status_code == 404 and r.json()["error"] == missing.json()["error"], r.text
            assert job["result"]["url"] not in r.text
        for verb in ("cancel", "retry"):
            assert as_stranger.post(f"/api/jobs/{job_id}/{verb}").status_code == 404
        listed = as_stranger.get("/api/jobs", params={"limit": 200}).json()
        assert job_id not in {j["job_id"] for j in listed["items"]} and listed["total"] == len(listed["items"]) == 0
        assert as_stranger.get("/api/jobs", params={"job_type": "export", "status": "COMPLETED"}).json()["total"] == 0

        # The creator sees it in its list; its verbs reach the job (a COMPLETED job cannot be retried: 409).
        mine = as_creator.get("/api/jobs").json()
        assert [j["job_id"] for j in mine["items"]] == [job_id] and mine["total"] == 1
        assert as_creator.post(f"/api/jobs/{job_id}/retry").status_code == 409

        # An admin token sees every job, with its result.
        seen = client.get(f"/api/jobs/{job_id}").json()
        assert seen["result"]["url"] == job["result"]["url"]
        assert job_id in {j["job_id"] for j in client.get("/api/jobs", params={"job_type": "export"}).json()["items"]}

        # Live events: the creator's stream follows the job, the stranger's never hears of it.
        time.sleep(0.5)
        assert creator_events.statuses(job_id)[-1:] == ["COMPLETED"], creator_events.seen
        assert stranger_events.statuses(job_id) == []
        assert all("created_by" not in e for e in creator_events.seen)
    finally:
        creator_events.stop.set()
        stranger_events.stop.set()
        as_creator.close()
        as_stranger.close()
        final = jobs.find_job(job_id)
        if final is not None and isinstance(final.result, dict) and final.result.get("key"):
            storage.get_s3().delete_object(Bucket=settings.store.bucket, Key=final.result["key"])
        with db.connection() as conn:
            conn.execute("delete from stage1_jobs where job_id = %s", (job_id,))


def test_a_job_without_a_creator_is_admin_only(gateway_url, client, two_tokens, job_type):
    import httpx

    legacy = _create(job_type, 1)[0]  # made outside any request, as before migration 0013
    assert legacy.created_by is None
    jobs.claim(legacy.job_id, "w")
    jobs.complete(legacy.job_id, "w", {"url": "https://example.invalid/secret"})
    r = httpx.get(f"{gateway_url}/api/jobs/{legacy.job_id}", headers={"X-Stage1-Token": two_tokens[0]["token"]})
    assert r.status_code == 404 and "secret" not in r.text
    assert client.get(f"/api/jobs/{legacy.job_id}").json()["result"] == {"url": "https://example.invalid/secret"}


def test_create_job_records_the_token_it_is_given(job_type, two_tokens):
    with db.connection() as conn:
        job = jobs.create_job(conn, job_type, {}, created_by=two_tokens[0]["token_id"])
    assert job.created_by == two_tokens[0]["token_id"]
    owner = jobs.Caller(two_tokens[0]["token_id"], admin=False)
    other = jobs.Caller(two_tokens[1]["token_id"], admin=False)
    assert jobs.find_job(job.job_id, owner) is not None and jobs.find_job(job.job_id, other) is None
    assert jobs.find_job(job.job_id, jobs.Caller(None, admin=True)) is not None
    assert [j.job_id for j in jobs.list_jobs(status=None, job_type=job_type, limit=10, offset=0, caller=other)[0]] == []
