"""Every kind of bad input to the datasets, runs and simulations endpoints is a 400 with the error
envelope (never a 422 or a 500): wrong types, missing fields, malformed UUIDs, slugs and
measurement names outside [a-z0-9_] or too long, bad limits, unknown sort fields (issue 3)."""

from __future__ import annotations

import uuid

import pytest
from resources_support import START, assert_envelope, dataset

from stage1.timeseries.kinds import Kind

U = str(uuid.uuid4())
LONG = "a" * 64
P = {"timestamp": START, "fold_number": 0, "prediction": 0.5}  # a valid prediction row

GETS = [
    # paging and sorting
    ("/api/datasets", {"limit": 0}), ("/api/datasets", {"limit": -1}), ("/api/datasets", {"limit": 1_000_000}),
    ("/api/datasets", {"limit": "ten"}), ("/api/datasets", {"offset": -5}), ("/api/datasets", {"sort": "password"}),
    ("/api/datasets", {"sort": "created_at;drop table x"}), ("/api/datasets", {"search": "x" * 201}),
    ("/api/datasets", {"symbol": "x" * 65}),
    ("/api/runs", {"limit": 1001}), ("/api/runs", {"offset": "many"}), ("/api/runs", {"sort": "-bogus"}),
    ("/api/runs", {"status": "DONE"}), ("/api/runs", {"measurement": "Bad-Name"}),
    ("/api/runs", {"measurement": LONG}), ("/api/runs", {"dataset_id": "not a slug!"}),
    ("/api/runs", {"dataset_id": LONG}),
    ("/api/simulations", {"run_id": "not-a-uuid"}), ("/api/simulations", {"dataset_id": "BTC-25"}),
    ("/api/simulations", {"sort": "pnl"}), ("/api/simulations", {"limit": 0}),
    # path ids
    ("/api/datasets/BTC-25", {}), (f"/api/datasets/{LONG}", {}), ("/api/datasets/Upper", {}),
    ("/api/datasets/bad.name/runs", {}), ("/api/datasets/bad-name/ohlcv", {}), ("/api/datasets/bad$/indicators", {}),
    ("/api/runs/not-a-uuid", {}), ("/api/runs/1234", {}), ("/api/runs/not-a-uuid/predictions", {}),
    ("/api/simulations/not-a-uuid", {}), ("/api/simulations/xyz/trades", {}),
    # row reads
    (f"/api/runs/{U}/predictions", {"format": "xml"}), (f"/api/runs/{U}/predictions", {"fold": -1}),
    (f"/api/runs/{U}/predictions", {"fold": "first"}), (f"/api/runs/{U}/predictions", {"limit": 10_001}),
    (f"/api/runs/{U}/predictions", {"from": -1}), (f"/api/runs/{U}/predictions", {"from": 20, "to": 10}),
    (f"/api/runs/{U}/predictions", {"timestamp_unit": "h"}),
    (f"/api/runs/{U}", {"download_predictions": "maybe"}),
    (f"/api/datasets/{U}/ohlcv", {"to": "yesterday"}), (f"/api/datasets/{U}/ohlcv", {"from": 5, "to": 1}),
    (f"/api/simulations/{U}/trades", {"side": ""}), (f"/api/simulations/{U}/trades", {"offset": -1}),
    (f"/api/simulations/{U}/trades", {"format": "parquet"}),
]


@pytest.mark.parametrize(("path", "params"), GETS)
def test_bad_query_or_path_is_400(client, path, params):
    assert_envelope(client.get(path, params=params), 400)


DELETES = [("/api/datasets/BAD", {}), ("/api/runs/nope", {}), ("/api/simulations/nope", {}),
           (f"/api/datasets/{U}", {"cascade": "sometimes"})]


@pytest.mark.parametrize(("path", "params"), DELETES)
def test_bad_delete_is_400(client, path, params):
    assert_envelope(client.delete(path, params=params), 400)


DATASET_BODIES = [
    {}, {"symbol": "BTC"}, {"dataset_slug": 5}, {"dataset_slug": "BTC-25"}, {"dataset_slug": ""},
    {"dataset_slug": LONG}, {"dataset_slug": "ok_1", "ohlcv_measurement": "bad.name"},
    {"dataset_slug": "ok_1", "indicator_measurement": "Has Space"}, {"dataset_slug": "ok_1", "ohlcv_rows": "many"},
    {"dataset_slug": "ok_1", "ohlcv_rows": -1}, {"dataset_slug": "ok_1", "ohlcv_first_ts": -10},
    {"dataset_slug": "ok_1", "metadata": "text"}, {"dataset_slug": "ok_1", "metadata": [1, 2]},
    {"dataset_slug": "ok_1", "created_at": "yesterday"}, {"dataset_slug": "ok_1", "dataset_id": "not-a-uuid"},
    {"dataset_slug": "ok_1", "record_questdb": "yes"}, {"dataset_slug": "ok_1", "symbol": "x" * 65},
    {"dataset_slug": "a" * 60},  # valid slug, but too long for the default `<slug>_ohlcv` name
    [{"dataset_slug": "ok_1"}], "just a string", None,
]


@pytest.mark.parametrize("body", DATASET_BODIES)
def test_bad_dataset_body_is_400(client, body):
    assert_envelope(client.post("/api/datasets", json=body), 400)


def test_malformed_json_is_400(client):
    for path in ("/api/datasets", "/api/runs", "/api/simulations"):
        r = client.post(path, content=b'{"dataset_slug": "x",', headers={"content-type": "application/json"})
        assert_envelope(r, 400)


RUN_BODIES = [
    {},  # no dataset
    {"dataset_id": "not-a-uuid"}, {"dataset_id": 42}, {"dataset_slug": "Bad-Slug"},
    {"dataset_id": U, "run_id": "nope"}, {"dataset_id": U, "prediction_measurement": "Bad Name"},
    {"dataset_id": U, "prediction_measurement": LONG}, {"dataset_id": U, "folds": "x"},
    {"dataset_id": U, "folds": [{"train_start": 1}]}, {"dataset_id": U, "folds": [{"fold_number": -1}]},
    {"dataset_id": U, "folds": [{"fold_number": "one"}]}, {"dataset_id": U, "folds": [{"fold_number": 2**31}]},
    {"dataset_id": U, "folds": [{"fold_number": 0}, {"fold_number": 0}]},
    {"dataset_id": U, "folds": [{"fold_number": 0, "thresholds": [0.5]}]},
    {"dataset_id": U, "feature_columns": "rsi"}, {"dataset_id": U, "walk_config": 3},
    {"dataset_id": U, "started_at": "last week"}, {"dataset_id": U, "threshold_columns": ["Bad"]},
    {"dataset_id": U, "predictions": "rows"}, {"dataset_id": U, "predictions": []},
    {"dataset_id": U, "predictions": [{"timestamp": START, "fold_number": 0}]},  # no prediction column
    {"dataset_id": U, "predictions": [{"fold_number": 0, "prediction": 0.1}]},  # no timestamp
    {"dataset_id": U, "predictions": [P, {**P, "timestamp": "not a time"}]},
    {"dataset_id": U, "predictions": [{**P, "timestamp": -5}]},
    {"dataset_id": U, "predictions": [{**P, "fold_number": "x"}]},
    {"dataset_id": U, "predictions": [{**P, "fold_number": 1.5}]},
    {"dataset_id": U, "predictions": [{**P, "fold_number": None}]},
    {"dataset_id": U, "predictions": [{**P, "prediction": "high"}]},
    {"dataset_id": U, "predictions": [{**P, "bar_index": 2**64}]},
    {"dataset_id": U, "predictions": [{**P, "Bad-Col": 1.0}]},
    {"dataset_id": U, "predictions": [{**P, "thr": "x"}]},
    {"dataset_id": U, "predictions": [{**P, "thr": {"nested": 1}}]},
    {"dataset_id": U, "predictions": [P], "predictions_csv": "timestamp,fold_number,prediction\n1,0,0.5\n"},
    {"dataset_id": U, "predictions_csv": ""}, {"dataset_id": U, "predictions_csv": "fold_number,prediction\n0,1\n"},
    {"dataset_id": U, "predictions_csv": "timestamp,fold_number,prediction\n1704067200,0\n"},
    {"dataset_id": U, "predictions_csv": "timestamp,fold_number,prediction,x\n1704067200,0,0.5,inf\n"},
    {"dataset_id": U, "predictions_csv": "timestamp,fold_number,prediction,prediction\n1,0,0.5,0.5\n"},
    {"dataset_id": U, "predictions_csv": 12},
    {"dataset_id": U, "upload_id": "not-a-uuid"},
]


@pytest.mark.parametrize("body", RUN_BODIES)
def test_bad_run_body_is_400(client, body):
    assert_envelope(client.post("/api/runs", json=body), 400)


T = {"bar_timestamp": START, "side": "long", "pnl": 1.0}
SIM_BODIES = [
    {}, {"name": "x"}, {"run_id": "not-a-uuid"}, {"dataset_id": "Not Slug"}, {"dataset_id": U, "trades": "many"},
    {"dataset_id": U, "trades": [{"side": "long", "pnl": 1.0}]}, {"dataset_id": U, "trades": [{**T, "pnl": None}]},
    {"dataset_id": U, "trades": [{**T, "side": ""}]}, {"dataset_id": U, "trades": [{**T, "side": "x" * 33}]},
    {"dataset_id": U, "trades": [{**T, "bar_timestamp": "soon"}]},
    {"dataset_id": U, "trades": [{**T, "bar_timestamp": -100}]},
    {"dataset_id": U, "trades": [{**T, "entry_price": "cheap"}]}, {"dataset_id": U, "trades": [{**T, "extra": 1}]},
    {"dataset_id": U, "config": []}, {"dataset_id": U, "name": "n" * 201}, {"dataset_id": U, "simulation_id": 7},
]


@pytest.mark.parametrize("body", SIM_BODIES)
def test_bad_simulation_body_is_400(client, body):
    assert_envelope(client.post("/api/simulations", json=body), 400)


def test_bad_column_names_on_row_reads(client, unique):
    with dataset(client, f"t3bi_{unique}") as ds:
        from resources_support import ohlcv_rows, write_table

        write_table(Kind.OHLCV, ds["ohlcv_measurement"], ohlcv_rows(2))
        for columns in ("close;drop", "Close", "a" * 64, "bad-col"):
            assert_envelope(client.get(f"/api/datasets/{ds['dataset_id']}/ohlcv", params={"columns": columns}), 400)


def test_unknown_body_fields_are_ignored(client, unique):
    r = client.post("/api/datasets", json={"dataset_slug": f"t3uf_{unique}", "from_a_newer_client": [1, 2, 3]})
    assert r.status_code == 201, r.text
    assert "from_a_newer_client" not in r.json()
    client.delete(f"/api/datasets/t3uf_{unique}")
