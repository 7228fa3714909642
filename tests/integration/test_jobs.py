"""The jobs service against the real Postgres: atomic claims, leases, the sweeper, cancel/retry.
Each test uses its own job_type so it never touches other tests' (or engineers') jobs."""

from __future__ import annotations

import threading
import time
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
    assert set(out) == {"requeued", "failed", "redispatched", "stale_dispatched", "waiting"}
    pending, total = jobs.list_jobs(status="PENDING", job_type=job_type, limit=10, offset=0)
    assert total == 3
