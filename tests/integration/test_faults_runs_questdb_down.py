"""No half-written runs: POST /api/runs while QuestDB is really unresponsive (issue 3), on the
private stack (private_stack.py; moved here from test_runs_questdb_down.py, which froze the shared
QuestDB under everyone's tests).

The private QuestDB is frozen with SIGSTOP (the kernel still accepts connections, the server
answers nothing: the worst kind of outage) and resumed with SIGCONT in a `finally`, at once.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from private_stack import (
    HOUR,
    START,
    PrivateStack,
    assert_clean_error,
    make_dataset,
    pclient_fixture,  # noqa: F401 - fixture `pclient`
    predictions_csv,
    pstack_fixture,  # noqa: F401 - fixture `pstack`
    unique,
    wait_until,
)


def _runs(stack: PrivateStack, where: str, value: str) -> list[tuple[str, str | None]]:
    with stack.pg() as conn:
        return conn.execute(f"select status, error from walkforward_runs where {where} = %s",  # noqa: S608
                            (value,)).fetchall()


def _assert_no_visible_run(stack: PrivateStack, client, run_id: str) -> None:
    """A failed create leaves no run, or one FAILED with its error: never a half-visible run."""
    rows = _runs(stack, "run_id", run_id)
    if not rows:
        assert client.get(f"/api/runs/{run_id}").status_code == 404
        return
    assert len(rows) == 1 and rows[0][0] == "FAILED" and rows[0][1], rows
    assert client.get(f"/api/runs/{run_id}/predictions", params={"limit": 1}).status_code == 409


def test_questdb_down_before_the_write_is_503_and_leaves_no_run(pstack, pclient):
    ds = make_dataset(pclient, unique("flt3dn"))
    run_id = str(uuid.uuid4())
    body = {"run_id": run_id, "dataset_id": ds["dataset_id"], "folds": [{"fold_number": k} for k in range(3)],
            "predictions": [{"timestamp": START + i * HOUR, "fold_number": i % 3, "prediction": i / 10}
                            for i in range(300)]}
    with pstack.questdb_frozen():
        started = time.monotonic()
        r = pclient.post("/api/runs", json=body)
        elapsed = time.monotonic() - started
        # Metadata reads still answer; the live QuestDB state says what is wrong.
        state = pclient.get(f"/api/datasets/{ds['dataset_id']}").json()["questdb_state"]["ohlcv"]
    wait_until(pstack.qdb_ready, 30, "QuestDB to answer again")
    err = assert_clean_error(r, (503,))
    assert err["details"]["service"] == "questdb" and err["error"].startswith("questdb unavailable")
    assert elapsed < 25
    assert state["exists"] is None and state["error"].startswith("questdb unavailable")
    _assert_no_visible_run(pstack, pclient, run_id)
    assert pclient.get("/api/runs", params={"dataset_id": ds["dataset_id"], "status": "COMPLETED"}).json()["total"] == 0


def test_questdb_frozen_in_the_middle_of_the_write_leaves_no_run_and_a_retry_completes(pstack, pclient):
    """QuestDB freezes right after the predictions table was created: the request fails (503) and
    no run is visible; what may remain is the table, and the client's retry completes."""
    n = 150_000
    ds = make_dataset(pclient, unique("flt3mw"))
    table = f"{ds['dataset_slug']}_wf"
    run_id = str(uuid.uuid4())
    body = {"run_id": run_id, "dataset_id": ds["dataset_id"], "prediction_measurement": table,
            "folds": [{"fold_number": k} for k in range(4)], "predictions_csv": predictions_csv(n)}
    result: dict = {}

    def post() -> None:
        with pstack.client(timeout=120) as c:
            result["response"] = c.post("/api/runs", json=body)

    worker = threading.Thread(target=post)
    try:
        worker.start()
        deadline = time.monotonic() + 60
        while not pstack.table_exists(table):
            assert worker.is_alive(), "the request ended before the table was created"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        with pstack.questdb_frozen():
            worker.join(timeout=90)
        wait_until(pstack.qdb_ready, 30, "QuestDB to answer again")
        r = result["response"]
        if r.status_code == 201:  # the write won the race against the freeze: then it is whole
            assert r.json()["prediction_rows"] == n
            pytest.skip("QuestDB froze only after the write had completed; the run is complete")
        err = assert_clean_error(r, (503,))
        assert err["details"]["service"] == "questdb"
        _assert_no_visible_run(pstack, pclient, run_id)
        retry_id = run_id if not _runs(pstack, "run_id", run_id) else str(uuid.uuid4())
        retry = pclient.post("/api/runs", json={**body, "run_id": retry_id}, timeout=120)
        assert retry.status_code == 201, retry.text
        assert retry.json()["prediction_rows"] == n and retry.json()["questdb_rows_written"] == n
        page = pclient.get(f"/api/runs/{retry_id}/predictions", params={"limit": 2, "offset": n - 2}).json()
        assert page["total"] == n
        assert [p["bar_index"] for p in page["predictions"]] == [n - 2, n - 1]
    finally:
        worker.join(timeout=120)
