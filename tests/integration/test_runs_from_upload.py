"""POST /api/runs with `upload_id`: predictions from a file uploaded to the bucket and imported by
the import job. The run is RUNNING (never half-visible: its predictions answer 409) until the job
ends, then COMPLETED with the rows QuestDB holds, or FAILED with the job's error (issue 3)."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from resources_support import HOUR, START, assert_envelope, dataset, drop_tables, predictions


def _csv(rows: list[dict], columns: list[str]) -> bytes:
    lines = [",".join(columns)]
    lines += [",".join("" if r.get(c) is None else str(r[c]) for c in columns) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def _start_upload(client: httpx.Client, data: bytes, measurement: str, kind: str = "predictions") -> dict:
    r = client.post("/api/uploads", json={"filename": "predictions.csv", "size": len(data), "kind": kind,
                                          "measurement": measurement, "content_type": "text/csv"})
    assert r.status_code == 201, r.text
    return r.json()


def _send(client: httpx.Client, upload: dict, data: bytes) -> None:
    r = httpx.post(upload["url"], data=upload["fields"], files={"file": ("predictions.csv", data)}, timeout=120)
    assert r.status_code in (200, 201, 204), r.text
    client.post(f"/api/uploads/{upload['upload_id']}/complete", json={})  # the idempotent nudge


def _wait_job(client: httpx.Client, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.3)


@pytest.fixture
def ds(client, unique):
    with dataset(client, f"t3up_{unique}") as created:
        yield created


COLUMNS = ["timestamp", "bar_index", "fold_number", "prediction", "target", "thr_0"]


def test_run_waits_for_the_upload_then_completes(client, ds, unique):
    rows = predictions(5000, 3, ["thr_0"], seed=21)
    data = _csv(rows, COLUMNS)
    table = f"t3up_{unique}_wf"
    up = _start_upload(client, data, table)
    try:
        r = client.post("/api/runs", json={"dataset_id": ds["dataset_id"], "upload_id": up["upload_id"],
                                           "folds": [{"fold_number": k} for k in range(3)], "target_column": "y"})
        assert r.status_code == 202, r.text
        created = r.json()
        assert created["status"] == "RUNNING" and created["job_id"] == up["job_id"]
        assert created["prediction_measurement"] == table and created["poll_url"] == f"/api/jobs/{up['job_id']}"
        busy = assert_envelope(client.get(f"/api/runs/{created['run_id']}/predictions"), 409)
        assert busy["details"]["status"] == "RUNNING" and busy["details"]["job_id"] == up["job_id"]
        listed = client.get("/api/runs", params={"dataset_id": ds["dataset_id"]}).json()["runs"]
        assert [x["status"] for x in listed] == ["RUNNING"]

        _send(client, up, data)
        assert _wait_job(client, up["job_id"])["status"] == "COMPLETED"
        detail = client.get(f"/api/runs/{created['run_id']}").json()
        assert detail["status"] == "COMPLETED" and detail["prediction_rows"] == 5000
        assert detail["threshold_columns"] == ["thr_0"] and detail["job_id"] == up["job_id"]
        got = client.get(f"/api/runs/{created['run_id']}/predictions", params={"limit": 10_000}).json()
        assert got["predictions"] == rows
    finally:
        drop_tables(table)


def test_an_upload_already_imported_gives_a_complete_run(client, ds, unique):
    rows = predictions(400, 2, ["thr_0"], seed=22)
    data = _csv(rows, COLUMNS)
    table = f"t3ui_{unique}_wf"
    up = _start_upload(client, data, table)
    try:
        _send(client, up, data)
        assert _wait_job(client, up["job_id"])["status"] == "COMPLETED"
        r = client.post("/api/runs", json={"dataset_slug": ds["dataset_slug"], "upload_id": up["upload_id"]})
        assert r.status_code == 201, r.text
        created = r.json()
        assert (created["status"], created["questdb_rows_written"], created["prediction_rows"]) == (
            "COMPLETED", 400, 400)
        # The same upload cannot back a second run (its measurement belongs to the first).
        assert_envelope(client.post("/api/runs", json={"dataset_id": ds["dataset_id"],
                                                       "upload_id": up["upload_id"]}), 409)
    finally:
        drop_tables(table)


def test_a_failed_import_fails_the_run(client, ds, unique):
    data = _csv([{"timestamp": START + i * HOUR, "fold_number": 0} for i in range(10)], ["timestamp", "fold_number"])
    table = f"t3uf_{unique}_wf"
    up = _start_upload(client, data, table)
    try:
        r = client.post("/api/runs", json={"dataset_id": ds["dataset_id"], "upload_id": up["upload_id"]})
        assert r.status_code == 202, r.text
        run_id = r.json()["run_id"]
        _send(client, up, data)
        job = _wait_job(client, up["job_id"])
        assert job["status"] == "FAILED"
        detail = client.get(f"/api/runs/{run_id}").json()
        assert detail["status"] == "FAILED" and detail["error"].startswith("predictions import failed")
        failed = assert_envelope(client.get(f"/api/runs/{run_id}/predictions"), 409)
        assert failed["details"]["status"] == "FAILED"
        again = assert_envelope(client.post("/api/runs", json={"dataset_id": ds["dataset_id"],
                                                               "upload_id": up["upload_id"]}), 409)
        assert again["details"]["job_id"] == up["job_id"]
    finally:
        drop_tables(table)


def test_upload_id_must_name_a_predictions_upload(client, ds, unique):
    assert_envelope(client.post("/api/runs", json={"dataset_id": ds["dataset_id"], "upload_id": str(uuid.uuid4())}),
                    409)
    up = _start_upload(client, b"timestamp,open\n1,2\n", f"t3uk_{unique}", kind="ohlcv")
    assert_envelope(client.post("/api/runs", json={"dataset_id": ds["dataset_id"], "upload_id": up["upload_id"]}),
                    400)
    other = _start_upload(client, b"timestamp,fold_number,prediction\n1,0,1\n", f"t3um_{unique}")
    assert_envelope(client.post("/api/runs", json={"dataset_id": ds["dataset_id"], "upload_id": other["upload_id"],
                                                   "prediction_measurement": f"t3uo_{unique}"}), 400)
    assert_envelope(client.post("/api/runs", json={"dataset_id": ds["dataset_id"], "upload_id": other["upload_id"],
                                                   "predictions": [{"timestamp": 1, "fold_number": 0,
                                                                    "prediction": 1}]}), 400)


def test_deleting_a_waiting_run_cancels_its_import(client, ds, unique):
    up = _start_upload(client, b"timestamp,fold_number,prediction\n1,0,1\n", f"t3ud_{unique}")
    r = client.post("/api/runs", json={"dataset_id": ds["dataset_id"], "upload_id": up["upload_id"]})
    assert r.status_code == 202, r.text
    assert client.delete(f"/api/runs/{r.json()['run_id']}").status_code == 200
    assert client.get(f"/api/jobs/{up['job_id']}").json()["status"] == "CANCELLED"


def test_the_uploads_table_becomes_the_runs_and_goes_with_it(client, ds, unique):
    """Issue 11, hole 2: the upload owns its table while it imports; once the run is COMPLETED the
    table is the run's (another run cannot write into it) and deleting the run drops it."""
    rows = predictions(300, 2, ["thr_0"], seed=4)
    data = _csv(rows, COLUMNS)
    table = f"t3own_{unique}_wf"
    up = _start_upload(client, data, table)
    try:
        r = client.post("/api/runs", json={"dataset_id": ds["dataset_id"], "upload_id": up["upload_id"]})
        assert r.status_code == 202, r.text
        _send(client, up, data)
        assert _wait_job(client, up["job_id"])["status"] == "COMPLETED"
        run_id = r.json()["run_id"]
        assert client.get(f"/api/runs/{run_id}").json()["status"] == "COMPLETED"
        err = assert_envelope(client.post("/api/runs", json={
            "dataset_id": ds["dataset_id"], "prediction_measurement": table,
            "predictions": [{"timestamp": START, "fold_number": 0, "prediction": 1.0}]}), 409)
        assert err["details"] == {"prediction_measurement": table}
        from stage1.core import db

        with db.connection() as conn:
            owner = conn.execute("select owner_kind, owner_id::text as id from stage1_questdb_tables "
                                 "where table_name = %s", (table,)).fetchone()
        assert owner == {"owner_kind": "run", "id": run_id}
        gone = client.delete(f"/api/runs/{run_id}").json()
        assert gone["questdb_table_dropped"] is True
        from stage1.core.questdb import get_questdb

        assert not get_questdb().table_exists(table)
    finally:
        drop_tables(table)
