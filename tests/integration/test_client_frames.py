"""DataFrames from and to the real stack through the gateway (docs/client.md, "DataFrames"): reads as
Parquet written by QuestDB with proper dtypes (pandas and polars), writes from DataFrames, and a
1M-row Parquet read."""

from __future__ import annotations

import contextlib
import time

import pandas as pd
import pytest
from client_support import unique_slug, write_ohlcv

from stage1_client import ApiError, Client

START = 1_704_067_200
UTC_NS = "datetime64[ns, UTC]"


@pytest.fixture(scope="module")
def c(gateway_url, api_token):
    with Client(gateway_url, api_token) as client:
        yield client


@pytest.fixture(scope="module")
def bars(c, tmp_path_factory):
    """A dataset with 600 one-minute bars, uploaded from a DataFrame."""
    slug = unique_slug("frames")
    c.datasets.upsert({"dataset_slug": slug, "symbol": "BTC", "granularity": "1m"})
    src = write_ohlcv(tmp_path_factory.mktemp("bars") / "bars.csv", 600, start=START)
    frame = pd.read_csv(src)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="s", utc=True)
    job = c.datasets.upload(slug, frame, kind="ohlcv")
    assert job.status == "COMPLETED" and job.progress == 600
    yield slug
    with contextlib.suppress(ApiError):
        c.datasets.delete(slug, cascade=True, drop_questdb=True)


def test_ohlcv_frame_is_typed_and_bounded_in_pandas_and_polars(c, bars):
    frame = c.datasets.ohlcv_frame(bars)
    assert len(frame) == 600 and str(frame["timestamp"].dtype) == UTC_NS
    assert frame["close"].dtype == "float64"
    assert frame["timestamp"].iloc[0] == pd.Timestamp(START, unit="s", tz="UTC")
    part = c.datasets.ohlcv_frame(bars, start=START + 60, end=START + 600 * 60 - 120)
    assert len(part) == 598 and part["timestamp"].min() == pd.Timestamp(START + 60, unit="s", tz="UTC")
    few = c.datasets.ohlcv_frame(bars, max_points=50)
    assert 0 < len(few) <= 50 and str(few["timestamp"].dtype) == UTC_NS
    polars = pytest.importorskip("polars")
    pl_frame = c.datasets.ohlcv_frame(bars, columns=["close"], engine="polars")
    assert isinstance(pl_frame, polars.DataFrame) and pl_frame.columns == ["timestamp", "close"]
    assert pl_frame.schema["timestamp"] == polars.Datetime("ns", "UTC") and pl_frame.height == 600
    with pytest.raises(ApiError):
        c.datasets.ohlcv_frame(bars, columns=['close"; drop table x; --'])


def test_a_run_from_dataframes_then_its_predictions_frame(c, bars):
    n = 120
    ts = pd.to_datetime([START + i * 60 for i in range(n)], unit="s", utc=True)
    preds = pd.DataFrame({"timestamp": ts, "bar_index": range(n), "fold_number": [i // 60 for i in range(n)],
                          "prediction": [i / n for i in range(n)], "target": [float(i % 2) for i in range(n)]})
    folds = pd.DataFrame({"fold_number": [0, 1], "train_start": [START, START], "train_end": [START + 3540] * 2,
                          "test_start": [START, START + 3600], "test_end": [START + 3540, START + 7140],
                          "samples_train": [500, 500], "samples_test": [60, 60]})
    created = c.runs.create({"dataset_slug": bars, "target_column": "up", "summary_metrics": {"sharpe": 1.5}},
                            folds=folds, predictions=preds)
    run = c.runs.wait(created)
    assert run.fold_count == 2 and run.prediction_rows == n
    frame = c.runs.predictions_frame(run.run_id)
    assert len(frame) == n and str(frame["timestamp"].dtype) == UTC_NS
    # ints stay ints, at the width QuestDB stores them (LONG bar_index, INT fold_number)
    assert frame["bar_index"].dtype == "int64" and pd.api.types.is_integer_dtype(frame["fold_number"])
    assert sorted(frame["bar_index"]) == list(range(n))
    assert len(c.runs.predictions_frame(run.run_id, fold=1)) == 60
    ranked = c.runs.search_frame(filter="summary_metrics.sharpe > 1", sort="-summary_metrics.sharpe", dataset=bars,
                                 details=True)
    assert ranked["run_id"].tolist() == [str(run.run_id)] and ranked["summary_metrics.sharpe"].iloc[0] == 1.5
    assert str(ranked["created_at"].dtype) == UTC_NS and ranked["fold_count"].dtype == "int64"


def test_simulation_from_a_trades_dataframe_and_its_trades_frame(c, bars):
    trades = pd.DataFrame({"bar_timestamp": [START + i * 3600 for i in range(4)], "side": ["long", "short"] * 2,
                           "pnl": [5.0, -2.0, 3.0, 4.0], "entry_price": [100.0] * 4,
                           "exit_price": [105.0, 98.0, 103.0, 104.0], "quantity": [1.0] * 4})
    sim = c.simulations.create({"dataset_id": str(c.datasets.get(bars).dataset_id), "name": "frames"}, trades=trades)
    frame = c.simulations.trades_frame(sim.simulation_id)
    assert len(frame) == 4 and frame["pnl"].sum() == 10.0
    assert str(frame["bar_timestamp"].dtype) == UTC_NS and frame["trade_index"].dtype == "int64"
    assert frame["entry_price"].dtype == "float64" and frame["side"].tolist() == ["long", "short"] * 2


def test_query_frame_of_a_million_rows_is_parquet_from_questdb(c):
    started = time.monotonic()
    frame = c.query_frame("select x, timestamp_sequence(0, 1000000) ts, rnd_double() d from long_sequence(1000000)")
    seconds = time.monotonic() - started
    assert len(frame) == 1_000_000 and frame["x"].dtype == "int64" and str(frame["ts"].dtype) == UTC_NS
    assert frame["x"].iloc[-1] == 1_000_000 and frame["ts"].iloc[1] == pd.Timestamp(1, unit="s", tz="UTC")
    print(f"1M rows as Parquet in {seconds:.2f} s")
    small = c.query("select x, cast(x as timestamp) t from long_sequence(3)")
    assert small.count == 3
    from stage1_client.frames import query_frame

    typed = query_frame(small)
    assert typed["x"].dtype == "int64" and str(typed["t"].dtype) == UTC_NS


def test_large_dataframe_writes_go_through_an_upload(c, bars, monkeypatch, capsys):
    """Above INLINE_MAX_BYTES of CSV, predictions and trades go up as Parquet uploads (a bound lowered
    here so the test stays small), and the reads follow with a progress bar when asked."""
    from stage1_client import framed

    monkeypatch.setattr(framed, "INLINE_MAX_BYTES", 100)
    n = 300
    preds = pd.DataFrame({"timestamp": pd.to_datetime([START + i * 60 for i in range(n)], unit="s", utc=True),
                          "bar_index": range(n), "fold_number": 0, "prediction": 0.5, "target": 1.0})
    created = c.runs.create({"dataset_slug": bars, "target_column": "up"},
                            folds=[{"fold_number": 0, "test_start": START, "test_end": START + n * 60}],
                            predictions=preds)
    assert created.job_id is not None  # an upload_id run: its import job
    run = c.runs.wait(created)
    assert run.prediction_rows == n
    assert len(c.runs.predictions_frame(run.run_id, progress=True)) == n
    trades = pd.DataFrame({"timestamp": pd.to_datetime([START + i * 60 for i in range(50)], unit="s", utc=True),
                           "side": "long", "entry_price": 100.0, "exit_price": 101.0, "quantity": 1.0, "pnl": 1.0})
    sim = c.simulations.create({"run_id": str(run.run_id), "name": "big"}, trades=trades)
    assert sim.status == "COMPLETED" and sim.trade_count == 50
    assert len(c.simulations.trades_frame(sim.simulation_id)) == 50


def test_a_parquet_export_that_becomes_a_job_is_followed_to_its_presigned_url(c, tmp_path):
    import pyarrow.parquet as pq

    jobs = []
    path = c.export("select x, cast(x as timestamp) t from long_sequence(2000)", tmp_path / "big.parquet",
                    mode="job", on_job=jobs.append)
    assert jobs and jobs[-1].status == "COMPLETED"
    assert pq.read_table(path).num_rows == 2000
