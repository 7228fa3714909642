"""Incremental runs (issue 13): created RUNNING, folds and their predictions sent one request at a
time, then completed. Readers see only stored folds; predictions stay 409 until COMPLETED; a re-sent
fold is idempotent (same data 200, other data 409); an idle RUNNING run is failed by the sweeper.
Through the gateway, against the real Postgres and QuestDB."""

from __future__ import annotations

import codecs
import json
import uuid
from pathlib import Path

import pytest
from resources_support import assert_envelope, dataset, drop_tables, predictions

from stage1.core import db
from stage1.runs import incremental


def _fold(n: int, rows: list[dict]) -> dict:
    mine = [r for r in rows if r["fold_number"] == n]
    return {"fold_number": n, "test_start": mine[0]["timestamp"], "test_end": mine[-1]["timestamp"],
            "samples_test": len(mine), "metrics": {"accuracy": 0.5 + n / 10}}


@pytest.fixture
def running(client):
    slug = f"inc_{uuid.uuid4().hex[:10]}"
    with dataset(client, slug) as ds:
        r = client.post("/api/runs", json={"dataset_id": ds["dataset_id"], "status": "RUNNING",
                                           "hyperparameters": {"max_depth": 4}, "threshold_columns": ["thr_a"]})
        assert r.status_code == 201, r.text
        run = r.json()
        assert run["status"] == "RUNNING"
        try:
            yield run
        finally:
            client.delete(f"/api/runs/{run['run_id']}")
            drop_tables(run["prediction_measurement"])


def test_a_three_fold_run_sent_fold_by_fold(client, running):
    run_id = running["run_id"]
    rows = predictions(90, 3, ["thr_a"])
    for n in range(3):
        r = client.post(f"/api/runs/{run_id}/folds",
                        json={"folds": [_fold(n, rows)], "predictions": [x for x in rows if x["fold_number"] == n]})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["added"] == [n] and body["fold_count"] == n + 1 and body["questdb_rows_written"] == 30
        detail = client.get(f"/api/runs/{run_id}").json()
        assert detail["status"] == "RUNNING"
        assert [f["fold_number"] for f in detail["folds"]] == list(range(n + 1))  # 1, then 2, then 3 folds
        # the contract: predictions of a run that is not COMPLETED are refused
        refused = assert_envelope(client.get(f"/api/runs/{run_id}/predictions"), 409)
        assert refused["details"]["status"] == "RUNNING"
    # re-sending a stored fold: same data → 200 unchanged, nothing written; other data → 409
    again = client.post(f"/api/runs/{run_id}/folds",
                        json={"folds": [_fold(1, rows)], "predictions": [x for x in rows if x["fold_number"] == 1]})
    assert again.status_code == 200, again.text
    assert again.json()["unchanged"] == [1] and again.json()["questdb_rows_written"] == 0
    changed = [{**x, "prediction": 0.123} for x in rows if x["fold_number"] == 1]
    assert_envelope(client.post(f"/api/runs/{run_id}/folds", json={"folds": [_fold(1, rows)],
                                                                  "predictions": changed}), 409)
    other_metrics = {**_fold(2, rows), "metrics": {"accuracy": 0.01}}
    assert_envelope(client.post(f"/api/runs/{run_id}/folds", json={"folds": [other_metrics]}), 409)
    # complete with the final summary
    done = client.post(f"/api/runs/{run_id}/complete", json={"summary_metrics": {"sharpe": 1.4}})
    assert done.status_code == 200, done.text
    detail = done.json()
    assert detail["status"] == "COMPLETED" and detail["summary_metrics"] == {"sharpe": 1.4}
    assert detail["prediction_rows"] == 90 and detail["fold_count"] == 3
    page = client.get(f"/api/runs/{run_id}/predictions", params={"limit": 1000}).json()
    assert page["total"] == 90
    assert {p["fold_number"] for p in page["predictions"]} == {0, 1, 2}
    assert page["columns"][-1] == "thr_a"
    # completing again: same summary → the run; another → 409; no more folds
    assert client.post(f"/api/runs/{run_id}/complete", json={"summary_metrics": {"sharpe": 1.4}}).status_code == 200
    assert_envelope(client.post(f"/api/runs/{run_id}/complete", json={"summary_metrics": {"sharpe": 9}}), 409)
    assert_envelope(client.post(f"/api/runs/{run_id}/folds", json={"folds": [{"fold_number": 7}]}), 409)


def test_bad_folds_requests_are_400_and_write_nothing(client, running):
    run_id = running["run_id"]
    rows = predictions(20, 2, ["thr_a"])
    # a prediction row of a fold the request does not send
    assert_envelope(client.post(f"/api/runs/{run_id}/folds", json={"folds": [_fold(0, rows)], "predictions": rows}),
                    400)
    assert_envelope(client.post(f"/api/runs/{run_id}/folds", json={"folds": [_fold(0, rows), _fold(0, rows)]}), 400)
    assert_envelope(client.post(f"/api/runs/{run_id}/folds", json={"folds": []}), 400)
    missing = [{"timestamp": r["timestamp"], "fold_number": 0} for r in rows[:5]]  # no prediction column
    assert_envelope(client.post(f"/api/runs/{run_id}/folds", json={"folds": [_fold(0, rows)],
                                                                  "predictions": missing}), 400)
    assert client.get(f"/api/runs/{run_id}").json()["folds"] == []
    # folds of a run that was not created RUNNING are refused
    assert_envelope(client.post(f"/api/runs/{uuid.uuid4()}/folds", json={"folds": [{"fold_number": 0}]}), 404)


def test_an_idle_running_run_is_failed_by_the_sweeper(client, running, settings):
    run_id = running["run_id"]
    idle = settings.jobs.run_incremental_timeout_seconds + 60
    with db.connection() as conn:  # as if its last fold came longer ago than the timeout
        conn.execute("update walkforward_runs set created_at = now() - make_interval(secs => %s), "
                     "last_fold_at = now() - make_interval(secs => %s) where run_id = %s", (idle, idle, run_id))
    assert incremental.sweep_idle() >= 1
    detail = client.get(f"/api/runs/{run_id}").json()
    assert detail["status"] == "FAILED" and "abandoned" in detail["error"]
    assert_envelope(client.post(f"/api/runs/{run_id}/complete", json={}), 409)


def test_a_run_with_recent_folds_is_not_swept(client, running):
    incremental.sweep_idle()
    assert client.get(f"/api/runs/{running['run_id']}").json()["status"] == "RUNNING"


def test_the_client_sends_a_run_fold_by_fold(gateway_url, api_token, client):
    from stage1_client import Client

    slug = f"incc_{uuid.uuid4().hex[:10]}"
    rows = predictions(40, 2, [])
    with dataset(client, slug) as ds, Client(gateway_url, api_token) as c:
        created = c.runs.create({"dataset_id": ds["dataset_id"], "status": "RUNNING"})
        try:
            assert created.status == "RUNNING"
            for n in range(2):
                added = c.runs.add_folds(created.run_id, [_fold(n, rows)],
                                         predictions=[r for r in rows if r["fold_number"] == n])
                assert added.added == [n] and c.runs.get(created.run_id).fold_count == n + 1
            run = c.runs.complete(created.run_id, summary_metrics={"sharpe": 0.7})
            assert run.status == "COMPLETED" and run.prediction_rows == 40
        finally:
            c.runs.delete(created.run_id)


CORPUS = Path(__file__).parents[1] / "hostile" / "incremental.txt"


def _cases() -> list[tuple[int, str, str]]:
    out = []
    for raw in CORPUS.read_text(encoding="ascii").split("\n"):
        if raw.strip() and not raw.startswith("#"):
            status, route, body = raw.split("\t", 2)
            out.append((int(status), route, codecs.decode(body, "unicode_escape")))
    return out


def test_hostile_bodies(client, running):
    """Every case of tests/hostile/incremental.txt is its 4xx with the envelope; generated bombs too;
    the run stays RUNNING with no fold, no simulation is stored."""
    run_id, ds = running["run_id"], running["dataset_id"]
    urls = {"folds": f"/api/runs/{run_id}/folds", "complete": f"/api/runs/{run_id}/complete",
            "simulations": "/api/simulations"}
    bombs = [
        (400, "folds", json.dumps({"folds": [{"fold_number": i} for i in range(1001)]})),
        (413, "folds", json.dumps({"folds": [{"fold_number": 0}],  # over the 10 MB body cap
                                   "predictions_csv": "timestamp,fold_number,prediction\n" + "1,0,1\n" * 1_900_000})),
    ]
    for status, route, body in [*_cases(), *bombs]:
        text = body.replace("{ds}", str(ds)).replace("{u}", str(uuid.uuid4()))
        r = client.post(urls[route], content=text.encode(), headers={"content-type": "application/json"})
        assert r.status_code < 500, (route, body[:120], r.status_code, r.text[:300])
        got = assert_envelope(r, r.status_code)
        assert r.status_code in (status, 413), (route, body[:120], r.status_code, got)
    detail = client.get(f"/api/runs/{run_id}").json()
    assert detail["status"] == "RUNNING" and detail["folds"] == []
