"""Walk-forward runs through the gateway against the real Postgres and QuestDB (issue 3)."""

from __future__ import annotations

import csv
import io
import re
import threading
import uuid

import pytest
from resources_support import (
    HOUR,
    START,
    assert_envelope,
    dataset,
    drop_tables,
    predictions,
    run_rows,
    table_exists,
    write_table,
)

from stage1.timeseries.kinds import Kind

RUN_LIST_FIELDS = {"run_id", "dataset_id", "dataset_slug", "prediction_measurement", "status", "started_at",
                   "completed_at", "fold_count", "target_column"}
RUN_DETAIL_FIELDS = {"run_id", "dataset_id", "prediction_measurement", "status", "started_at", "completed_at",
                     "target_column", "feature_columns", "walk_config", "hyperparameters", "summary_metrics", "folds"}
FOLD_FIELDS = {"fold_number", "train_start", "train_end", "test_start", "test_end", "samples_train", "samples_test",
               "thresholds", "metrics"}
THRESHOLDS = ["threshold_0", "threshold_1"]
N_PRED, N_FOLDS = 12_000, 4


@pytest.fixture
def ds(client, unique):
    with dataset(client, f"t3rn_{unique}") as created:
        yield created


def _folds(n: int) -> list[dict]:
    per = N_PRED // n
    return [{"fold_number": k, "train_start": START + (k * per - 2000) * HOUR, "train_end": START + k * per * HOUR,
             "test_start": START + k * per * HOUR, "test_end": START + ((k + 1) * per - 1) * HOUR,
             "samples_train": 2000, "samples_test": per,
             "thresholds": {"long": 0.6 + k / 100, "short": -0.6, "threshold_0": 0.5},
             "metrics": {"auc": 0.5 + k / 50, "hit_rate": [0.5, 0.51], "pnl": {"total": k * 1.25}}} for k in range(n)]


@pytest.fixture
def big_run(client, ds):
    rows = predictions(N_PRED, N_FOLDS, THRESHOLDS)
    body = {
        "dataset_id": ds["dataset_id"], "target_column": "ret_fwd_1", "feature_columns": ["rsi_14", "ema_20", "vol"],
        "walk_config": {"train_bars": 2000, "test_bars": 3000, "step": 3000, "purge": 12},
        "hyperparameters": {"max_depth": 6, "eta": 0.05, "subsample": 0.8, "objective": "reg:squarederror"},
        "summary_metrics": {"sharpe": 1.23, "folds": N_FOLDS}, "started_at": "2024-02-01T10:00:00Z",
        "completed_at": "2024-02-01T10:05:00Z", "folds": _folds(N_FOLDS), "predictions": rows,
        "threshold_columns": THRESHOLDS, "client_only_field": "ignored",
    }
    r = client.post("/api/runs", json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    yield body, rows, created
    client.delete(f"/api/runs/{created['run_id']}")


def _as_csv_value(v):
    return "" if v is None else v


def test_run_round_trip(client, ds, big_run):
    body, rows, created = big_run
    table = created["prediction_measurement"]
    assert re.fullmatch(rf"{ds['dataset_slug']}_wf_\d{{14}}(_\d+)?", table)
    assert created["questdb_rows_written"] == N_PRED and created["prediction_rows"] == N_PRED
    assert created["threshold_columns"] == THRESHOLDS and created["status"] == "COMPLETED"

    detail = client.get(f"/api/runs/{created['run_id']}").json()
    assert set(detail) >= RUN_DETAIL_FIELDS
    for key in ("target_column", "feature_columns", "walk_config", "hyperparameters", "summary_metrics"):
        assert detail[key] == body[key], key
    assert detail["started_at"] == "2024-02-01T10:00:00Z" and detail["completed_at"] == "2024-02-01T10:05:00Z"
    assert detail["dataset_id"] == ds["dataset_id"] and detail["dataset_slug"] == ds["dataset_slug"]
    assert detail["fold_count"] == N_FOLDS and detail["prediction_rows"] == N_PRED
    assert all(set(f) == FOLD_FIELDS for f in detail["folds"])
    assert detail["folds"] == body["folds"]

    # JSON pages, value by value, in the documented column order.
    got, offset = [], 0
    while offset is not None:
        page = client.get(f"/api/runs/{created['run_id']}/predictions", params={"limit": 10_000, "offset": offset})
        assert page.status_code == 200, page.text
        page = page.json()
        assert page["columns"] == ["timestamp", "bar_index", "fold_number", "prediction", "target", *THRESHOLDS]
        assert page["total"] == N_PRED
        got += page["predictions"]
        offset = page["next_offset"]
    assert len(got) == N_PRED
    assert got == rows
    assert all(list(g) == page["columns"] for g in got[:5])

    # CSV (streamed from QuestDB), value by value; download_predictions gives the same file.
    r = client.get(f"/api/runs/{created['run_id']}/predictions", params={"format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    parsed = list(csv.reader(io.StringIO(r.text)))
    assert parsed[0] == ["timestamp", "bar_index", "fold_number", "prediction", "target", *THRESHOLDS]
    assert len(parsed) == N_PRED + 1
    for line, row in zip(parsed[1:], rows, strict=True):
        assert int(line[0]) == row["timestamp"] and int(line[1]) == row["bar_index"]
        assert int(line[2]) == row["fold_number"] and float(line[3]) == row["prediction"]
        assert (line[4] == "" and row["target"] is None) or float(line[4]) == row["target"]
        assert [float(v) for v in line[5:]] == [row[t] for t in THRESHOLDS]
    download = client.get(f"/api/runs/{created['run_id']}", params={"download_predictions": "true"})
    assert download.status_code == 200 and download.text == r.text


def test_prediction_filters(client, big_run):
    _, rows, created = big_run
    url = f"/api/runs/{created['run_id']}/predictions"
    fold2 = client.get(url, params={"fold": 2, "limit": 10_000}).json()
    assert fold2["predictions"] == [r for r in rows if r["fold_number"] == 2]
    lo, hi = rows[5000]["timestamp"], rows[5099]["timestamp"]
    window = client.get(url, params={"from": lo, "to": hi}).json()
    assert window["total"] == 100 and window["predictions"] == rows[5000:5100]
    csv_window = client.get(url, params={"from": lo, "to": hi, "fold": 1, "format": "csv"}).text.splitlines()
    assert len(csv_window) == 1 + sum(1 for r in rows[5000:5100] if r["fold_number"] == 1)
    ms = client.get(url, params={"limit": 1, "timestamp_unit": "ms"}).json()
    assert ms["predictions"][0]["timestamp"] == rows[0]["timestamp"] * 1000
    empty = client.get(url, params={"fold": 99}).json()
    assert empty["total"] == 0 and empty["predictions"] == [] and empty["next_offset"] is None


def test_run_list_filters(client, ds, big_run):
    _, _, created = big_run
    listed = client.get("/api/runs", params={"dataset_id": ds["dataset_id"]}).json()
    assert listed["total"] == 1 and set(listed) == {"runs", "total", "limit", "offset", "next_cursor"}
    item = listed["runs"][0]
    assert set(item) >= RUN_LIST_FIELDS and item["run_id"] == created["run_id"] and item["fold_count"] == N_FOLDS
    assert client.get("/api/runs", params={"dataset_id": ds["dataset_slug"]}).json()["total"] == 1
    assert client.get(f"/api/datasets/{ds['dataset_slug']}/runs").json()["runs"] == listed["runs"]
    table = created["prediction_measurement"]
    assert client.get("/api/runs", params={"measurement": table}).json()["total"] == 1
    assert client.get("/api/runs", params={"search": table[-12:]}).json()["total"] >= 1
    assert client.get("/api/runs", params={"dataset_id": ds["dataset_id"], "status": "COMPLETED"}).json()["total"] == 1
    assert client.get("/api/runs", params={"dataset_id": ds["dataset_id"], "status": "FAILED"}).json()["total"] == 0
    assert client.get("/api/runs", params={"sort": "-started_at", "limit": 1}).status_code == 200


def test_inline_csv_and_unique_names_in_the_same_second(client, ds):
    """CSV text with `timestamp_unix` in milliseconds; several runs saved at once get distinct tables."""
    lines = ["timestamp_unix,fold_number,prediction,target,bar_index,Thr_A"]
    lines += [f"{(START + i * HOUR) * 1000},{i % 3},{i / 10},{i % 2},{i},{0.25 * (i % 4)}" for i in range(300)]
    body = {"dataset_id": ds["dataset_id"], "folds": [{"fold_number": k} for k in range(3)],
            "predictions_csv": "\n".join(lines) + "\n"}
    results: list = [None] * 3

    def post(i: int) -> None:
        results[i] = client.post("/api/runs", json=body)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.status_code == 201 for r in results), [r.text for r in results]
    created = [r.json() for r in results]
    try:
        names = {c["prediction_measurement"] for c in created}
        assert len(names) == 3
        first = created[0]
        assert first["threshold_columns"] == ["thr_a"] and first["prediction_rows"] == 300
        got = client.get(f"/api/runs/{first['run_id']}/predictions", params={"limit": 1000}).json()["predictions"]
        assert got == [{"timestamp": START + i * HOUR, "bar_index": i, "fold_number": i % 3, "prediction": i / 10,
                        "target": float(i % 2), "thr_a": 0.25 * (i % 4)} for i in range(300)]
    finally:
        for c in created:
            client.delete(f"/api/runs/{c['run_id']}")


def test_register_existing_measurement_without_inline_predictions(client, ds, unique):
    """The desktop may write the predictions table itself and register the run afterwards."""
    table = f"t3ext_{unique}_wf"
    rows = predictions(250, 2, ["thr_x"], seed=9)
    write_table(Kind.PREDICTIONS, table, rows)
    r = client.post("/api/runs", json={"dataset_slug": ds["dataset_slug"], "prediction_measurement": table,
                                       "folds": [{"fold_number": 0}, {"fold_number": 1}]})
    try:
        assert r.status_code == 201, r.text
        created = r.json()
        assert (created["questdb_rows_written"], created["prediction_rows"]) == (0, 250)
        assert created["threshold_columns"] == ["thr_x"]
        got = client.get(f"/api/runs/{created['run_id']}/predictions", params={"limit": 1000}).json()["predictions"]
        assert got == rows
        assert_envelope(client.post("/api/runs", json={"dataset_id": ds["dataset_id"],
                                                       "prediction_measurement": table}), 409)
    finally:
        client.delete(f"/api/runs/{r.json()['run_id']}")
        drop_tables(table)


def test_run_without_predictions_and_conflicts(client, ds):
    run_id = str(uuid.uuid4())
    r = client.post("/api/runs", json={"run_id": run_id, "dataset_id": ds["dataset_id"], "target_column": "y"})
    assert r.status_code == 201, r.text
    try:
        assert r.json()["run_id"] == run_id and r.json()["prediction_rows"] == 0
        empty = client.get(f"/api/runs/{run_id}/predictions").json()
        assert empty["total"] == 0 and empty["columns"][:5] == ["timestamp", "bar_index", "fold_number",
                                                                  "prediction", "target"]
        assert client.get(f"/api/runs/{run_id}/predictions", params={"format": "csv"}).text.strip() == (
            "timestamp,bar_index,fold_number,prediction,target")
        assert_envelope(client.post("/api/runs", json={"run_id": run_id, "dataset_id": ds["dataset_id"]}), 409)
    finally:
        client.delete(f"/api/runs/{run_id}")


def test_unknown_dataset_is_409_and_nothing_is_written(client, unique):
    run_id = str(uuid.uuid4())
    body = {"run_id": run_id, "dataset_id": str(uuid.uuid4()), "folds": [{"fold_number": 0}],
            "predictions": [{"timestamp": START, "fold_number": 0, "prediction": 1.0}]}
    err = assert_envelope(client.post("/api/runs", json=body), 409)
    assert "dataset_id" in err["details"]
    assert_envelope(client.post("/api/runs", json={"dataset_slug": f"nope_{unique}"}), 409)
    assert run_rows(run_id) == 0


def test_delete_run_drops_its_table(client, ds):
    r = client.post("/api/runs", json={"dataset_id": ds["dataset_id"],
                                       "predictions": [{"timestamp": START, "fold_number": 0, "prediction": 1.0}]})
    created = r.json()
    assert table_exists(created["prediction_measurement"])
    d = client.delete(f"/api/runs/{created['run_id']}")
    assert d.status_code == 200, d.text
    assert d.json() == {"run_id": created["run_id"], "deleted": True,
                        "prediction_measurement": created["prediction_measurement"], "simulations_deleted": 0,
                        "questdb_table_dropped": True, "questdb_error": None}
    assert not table_exists(created["prediction_measurement"])
    assert_envelope(client.get(f"/api/runs/{created['run_id']}"), 404)
    assert_envelope(client.delete(f"/api/runs/{created['run_id']}"), 404)


def test_questdb_rejection_is_400_and_leaves_no_run(client, ds, unique):
    """QuestDB refusing the rows (here a type clash with a column of the table) is a 400 relaying
    its message, and no run is left behind. The table is one a failed attempt of a run left
    registered to it (the only existing table a run may write into, issue 11 hole 2)."""
    table = f"t3rej_{unique}"
    write_table(Kind.PREDICTIONS, table, [{"timestamp": START, "fold_number": 0, "prediction": 0.5}])
    from stage1.core import db
    from stage1.core.questdb import get_questdb

    get_questdb().exec(f'alter table "{table}" add column thr_s LONG')
    with db.connection() as conn:  # what a failed create whose DROP did not happen leaves
        conn.execute("insert into stage1_questdb_tables (table_name, owner_kind, owner_id, role, owned) "
                     "values (%s, 'run', gen_random_uuid(), 'predictions', true)", (table,))
    run_id = str(uuid.uuid4())
    r = client.post("/api/runs", json={"run_id": run_id, "dataset_id": ds["dataset_id"],
                                       "prediction_measurement": table,
                                       "predictions": [{"timestamp": START + HOUR, "fold_number": 0,
                                                        "prediction": 0.1, "thr_s": 0.5}]})
    try:
        err = assert_envelope(r, 400)
        assert "questdb" in err["details"]
        assert run_rows(run_id) == 0
    finally:
        drop_tables(table)
        with db.connection() as conn:
            conn.execute("delete from stage1_questdb_tables where table_name = %s", (table,))


def test_not_found(client):
    missing = uuid.uuid4()
    assert_envelope(client.get(f"/api/runs/{missing}"), 404)
    assert_envelope(client.get(f"/api/runs/{missing}/predictions"), 404)
    assert_envelope(client.get(f"/api/runs/{missing}", params={"download_predictions": "true"}), 404)
    assert_envelope(client.delete(f"/api/runs/{missing}"), 404)
