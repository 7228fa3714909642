"""Races and load on the private stack (private_stack.py):

- a cancel racing an import's completion: the final status is CANCELLED (and the target holds none
  of its rows) or COMPLETED (with exactly its rows), never both, never flipped afterwards;
- 20 concurrent `POST /api/runs` while QuestDB is frozen (SIGSTOP on the private QuestDB): health
  checks and Postgres-only reads keep answering, each request fails cleanly (503 naming questdb) or
  completes, nothing is reported as "postgres unavailable" because the pool ran dry.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from private_stack import (
    job_now,
    make_dataset,
    ohlcv_file,
    pclient_fixture,  # noqa: F401 - fixture `pclient`
    post_file,
    predictions_csv,
    pstack_fixture,  # noqa: F401 - fixture `pstack`
    settled_runs,
    unique,
    wait_job_status,
)

FREEZE_SECONDS = 5


# (name, when to cancel): right after it starts, half-way, at the last progress report, after it ended.
TRIGGERS = [
    ("running", lambda job, n: job["status"] == "RUNNING"),
    ("half", lambda job, n: job["status"] == "RUNNING" and (job["progress"] or 0) >= n // 2),
    ("last", lambda job, n: (job["progress"] or 0) >= n or job["status"] != "RUNNING" and job["progress"]),
    ("ended", lambda job, n: job["status"] in ("COMPLETED", "FAILED", "CANCELLED")),
]


@pytest.mark.parametrize("trigger", [t[0] for t in TRIGGERS])
def test_cancel_racing_completion_is_one_consistent_outcome(pstack, pclient, tmp_path, trigger):
    if not pstack.has_minio:
        pytest.skip("no MinIO build in the install cache (make up builds it)")
    when = dict(TRIGGERS)[trigger]
    ds = make_dataset(pclient, unique("fltcx"))
    path, n = ohlcv_file(tmp_path / "ohlcv.csv", 300_000)
    data = path.read_bytes()
    measurement = f"{ds['dataset_slug']}_{trigger}"
    r = pclient.post("/api/uploads", json={"filename": "ohlcv.csv", "size": len(data), "kind": "ohlcv",
                                           "measurement": measurement})
    assert r.status_code == 201, r.text
    up = r.json()
    post_file(up, data, "ohlcv.csv")
    deadline = time.monotonic() + 90
    while not when(job := job_now(pclient, up["job_id"]), n):
        assert time.monotonic() < deadline, f"trigger {trigger} never reached: {job}"
        if job["status"] in ("FAILED", "CANCELLED"):
            pytest.fail(f"the import ended {job['status']} on its own: {job}")
        time.sleep(0.01)
    cancel = pclient.post(f"/api/jobs/{up['job_id']}/cancel")
    assert cancel.status_code in (200, 409), cancel.text
    final = wait_job_status(pclient, up["job_id"], timeout=120)
    time.sleep(2.0)  # a worker that lost the race must not flip the outcome afterwards
    again = job_now(pclient, up["job_id"])
    assert again["status"] == final["status"] and again["result"] == final["result"], (final, again)
    if cancel.status_code == 200:
        said = cancel.json()["status"]
        assert said in ("CANCELLED", "COMPLETED"), cancel.json()
        if said == "CANCELLED":
            assert final["status"] == "CANCELLED", f"cancel answered CANCELLED, the job ended {final}"
    else:
        assert final["status"] in ("COMPLETED", "FAILED"), final  # 409: it had already ended
    assert final["status"] in ("CANCELLED", "COMPLETED"), final
    if final["status"] == "COMPLETED":
        assert pstack.count(measurement) == n, "nothing lost, nothing doubled"
        assert final["result"]["rows_written"] == n
    else:  # the cancelled import's rows are not left behind in its target (dropped or never moved there)
        deadline = time.monotonic() + 30
        while (left := pstack.count(measurement)) != 0:
            assert time.monotonic() < deadline, (
                f"job CANCELLED but {left} of its {n} rows are in {measurement} 30 s later; cancel answered "
                f"{cancel.status_code} {cancel.text[:200]}; final job {final}")
            time.sleep(0.5)
    print(f"cancel at {trigger}: cancel answered {cancel.status_code} {cancel.json().get('status')}, "
          f"job {final['status']}, rows in target {pstack.count(measurement)}")


def test_20_concurrent_run_creates_with_questdb_frozen_fail_cleanly_and_never_starve_the_pool(pstack, pclient):
    ds = make_dataset(pclient, unique("fltfz"))
    n, count = 2_000, 20
    body = predictions_csv(n, folds=2)
    results: dict[str, tuple[int | None, str, float]] = {}
    side: list[tuple[str, int | None, float, str]] = []  # (what, status, seconds, text) while frozen
    lock = threading.Lock()
    go, frozen_done = threading.Barrier(count + 1), threading.Event()

    def create(k: int) -> None:
        run_id = str(uuid.uuid4())
        with pstack.client(timeout=180) as c:
            go.wait(30)
            started = time.monotonic()
            try:
                r = c.post("/api/runs", json={"run_id": run_id, "dataset_id": ds["dataset_id"],
                                              "prediction_measurement": f"{ds['dataset_slug']}_r{k}",
                                              "folds": [{"fold_number": 0}, {"fold_number": 1}],
                                              "predictions_csv": body})
                outcome = (r.status_code, r.text[:300], time.monotonic() - started)
            except Exception as exc:  # noqa: BLE001 - asserted below
                outcome = (None, repr(exc)[:300], time.monotonic() - started)
        with lock:
            results[run_id] = outcome

    def probe(what: str, path: str) -> None:
        with pstack.client(timeout=30) as c:
            while not frozen_done.is_set():
                started = time.monotonic()
                try:
                    r = c.get(path)
                    item = (what, r.status_code, time.monotonic() - started, r.text[:200])
                except Exception as exc:  # noqa: BLE001 - asserted below
                    item = (what, None, time.monotonic() - started, repr(exc)[:200])
                with lock:
                    side.append(item)
                time.sleep(0.2)

    threads = [threading.Thread(target=create, args=(k,)) for k in range(count)]
    probes = [threading.Thread(target=probe, args=("healthz", "/api/healthz")),
              threading.Thread(target=probe, args=("datasets", f"/api/datasets/{ds['dataset_id']}/runs?limit=1"))]
    for t in threads:
        t.start()
    with pstack.questdb_frozen():
        go.wait(30)  # every request is sent while QuestDB answers nothing
        for t in probes:
            t.start()
        time.sleep(FREEZE_SECONDS)
        frozen_done.set()
    for t in threads + probes:
        t.join(timeout=240)
    assert len(results) == count
    statuses = sorted(str(s) for s, _, _ in results.values())
    for run_id, (status, text, _took) in results.items():
        assert status in (201, 503), (run_id, status, text)
        if status == 503:
            assert '"service":"questdb"' in text.replace(" ", ""), f"not a questdb 503: {text}"
    for what, status, took, text in side:
        assert status is not None, (what, text)
        assert took < 8.0, f"{what} took {took:.1f}s while QuestDB was frozen"
        if what == "datasets":  # Postgres only: the frozen QuestDB must not take the pool with it
            assert status == 200, (what, status, text)
        else:
            assert status in (200, 503) and "postgres unavailable" not in text, (what, status, text)
    # Every run is whole or failed, or was never created (503); none stays PENDING/RUNNING.
    runs = settled_runs(pstack, list(results), timeout=120)
    for run_id, run in runs.items():
        if run["status"] == "COMPLETED":
            assert run["rows"] == n and pstack.count(run["table"]) == n, (run_id, run)
        else:
            assert run["error"], (run_id, run)
        if results[run_id][0] == 201:
            assert run["status"] == "COMPLETED", (run_id, run)
    slowest = {w: max((t for x, _, t, _ in side if x == w), default=0.0) for w in ("healthz", "datasets")}
    print(f"20 run creates with QuestDB frozen {FREEZE_SECONDS}s: {statuses}; {len(runs)} runs recorded; "
          f"probes {len(side)}, slowest {slowest}; slowest create {max(t for _, _, t in results.values()):.1f}s")
