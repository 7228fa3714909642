"""The Python client (stage1_client) against the real gateway: typed results, the error envelope as
ApiError, uploads (single and multipart) with their import jobs, watching jobs by events and by
polling, predictions downloads."""

from __future__ import annotations

import contextlib
import csv
import threading
import time
import uuid

import pyarrow.parquet as pq
import pytest
from client_support import cancel_leftover_jobs, new_job, unique_slug, write_ohlcv, write_ohlcv_bytes

from stage1.jobs import service as jobs
from stage1_client import ApiError, Client
from stage1_wire.datasets import Dataset, DatasetList
from stage1_wire.jobs import JobOut
from stage1_wire.runs import RunCreated, RunDetail


@pytest.fixture(autouse=True)
def _tidy_jobs():
    yield
    cancel_leftover_jobs()


@pytest.fixture
def c(gateway_url, api_token):
    with Client(gateway_url, api_token) as client:
        yield client


@pytest.fixture
def dataset(c):
    slug = unique_slug("client")
    ds = c.datasets.upsert({"dataset_slug": slug, "symbol": "ETH", "granularity": "1m"})
    yield ds
    with contextlib.suppress(ApiError):
        c.datasets.delete(slug, cascade=True, drop_questdb=True)


def _run_body(slug: str, n: int = 120) -> dict:
    start = 1_704_067_200
    predictions = [{"timestamp": start + i * 60, "bar_index": i, "fold_number": i // 60, "prediction": i / n,
                    "target": float(i % 2), "thr_a": 1.0 if i % 3 else 0.0} for i in range(n)]
    folds = [{"fold_number": k, "train_start": start, "train_end": start + 59 * 60, "test_start": start + k * 3600,
              "test_end": start + k * 3600 + 59 * 60, "samples_train": 500, "samples_test": 60,
              "thresholds": {"thr_a": 0.5}, "metrics": {"auc": 0.6 + k / 100}} for k in range(2)]
    return {"dataset_slug": slug, "target_column": "up", "feature_columns": ["f1", "f2"],
            "threshold_columns": ["thr_a"], "folds": folds, "predictions": predictions}


def test_datasets_are_typed_and_round_trip(c, dataset):
    assert isinstance(dataset, Dataset)
    got = c.datasets.get(dataset.dataset_slug)
    assert isinstance(got, Dataset)
    assert (got.dataset_id, got.symbol, got.granularity) == (dataset.dataset_id, "ETH", "1m")
    by_id = c.datasets.get(dataset.dataset_id)
    assert by_id.dataset_slug == dataset.dataset_slug
    page = c.datasets.list(search=dataset.dataset_slug)
    assert isinstance(page, DatasetList)
    assert [d.dataset_slug for d in page.datasets] == [dataset.dataset_slug]
    assert [d.dataset_slug for d in c.datasets.iter(search=dataset.dataset_slug, page=1)] == [dataset.dataset_slug]


def test_error_envelope_becomes_api_error(c, gateway_url):
    with pytest.raises(ApiError) as info:
        c.datasets.get("no_such_dataset_" + uuid.uuid4().hex[:8])
    assert info.value.status == 404
    assert info.value.message == "dataset not found"
    assert info.value.details and "dataset_id" in info.value.details
    assert str(info.value).startswith("404 dataset not found {")

    with pytest.raises(ApiError) as info:  # 400 with the problems listed
        c.datasets.upsert({"dataset_slug": "Not A Slug!"})
    assert info.value.status == 400 and info.value.details

    with Client(gateway_url, "s1_not_a_real_token") as bad, pytest.raises(ApiError) as info:
        bad.datasets.list()
    assert info.value.status == 401

    with Client("http://127.0.0.1:9", "x", retries=0) as nowhere, pytest.raises(ApiError) as info:
        nowhere.datasets.list()
    assert info.value.status == 0 and "cannot reach" in info.value.message


def test_run_create_get_and_predictions_csv_and_parquet(c, dataset, tmp_path):
    created = c.runs.create(_run_body(dataset.dataset_slug))
    assert isinstance(created, RunCreated)
    assert created.questdb_rows_written == 120
    run = c.runs.get(created.run_id)
    assert isinstance(run, RunDetail)
    assert [f.fold_number for f in run.folds] == [0, 1]
    assert run.folds[1].metrics == {"auc": 0.61}
    page = c.runs.predictions(created.run_id, fold=1, limit=10)
    assert page.total == 60 and page.predictions[0]["bar_index"] == 60

    seen: list[tuple[int, int | None]] = []
    dest = c.runs.download_predictions(created.run_id, tmp_path / "p.csv", on_bytes=lambda d, t: seen.append((d, t)))
    with open(dest, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 120
    assert list(rows[0]) == ["timestamp", "bar_index", "fold_number", "prediction", "target", "thr_a"]
    assert rows[0]["timestamp"] == "1704067200" and float(rows[5]["prediction"]) == 5 / 120
    assert seen and seen[-1][0] == dest.stat().st_size
    assert not (tmp_path / "p.csv.part").exists()

    table = pq.read_table(c.runs.download_predictions(created.run_id, tmp_path / "p.parquet"))
    assert table.num_rows == 120
    assert table.column_names == ["timestamp", "bar_index", "fold_number", "prediction", "target", "thr_a"]
    assert table.column("bar_index").to_pylist() == [int(r["bar_index"]) for r in rows]
    assert str(table.schema.field("prediction").type) == "double"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv", "p.parquet"]  # no temporary files left

    with pytest.raises(ApiError) as info:
        c.runs.get(uuid.uuid4())
    assert info.value.status == 404


def test_simulation_create_and_buckets(c, dataset):
    created = c.runs.create(_run_body(dataset.dataset_slug, 60))
    trades = [{"bar_timestamp": 1_704_067_200 + i * 3600, "side": "long" if i % 2 else "short", "pnl": p,
               "entry_price": 100.0, "exit_price": 100.0 + p, "quantity": 1.0} for i, p in enumerate([5, -2, 3, 4])]
    sim = c.simulations.create({"run_id": str(created.run_id), "name": "client test", "trades": trades})
    got = c.simulations.get(sim.simulation_id)
    total = next(b for b in got.buckets if b.bucket_type == "all")
    assert (total.trade_count, total.win_count, total.total_pnl) == (4, 3, 10.0)
    assert [s.simulation_id for s in c.simulations.list(run=str(created.run_id)).simulations] == [sim.simulation_id]
    assert c.simulations.trades(sim.simulation_id).total == 4


def test_single_upload_and_watch_by_events(c, dataset, tmp_path):
    path = write_ohlcv(tmp_path / "bars.csv", 2500)
    progress: list[tuple[int, int | None]] = []
    upload = c.uploads.upload(path, kind="ohlcv", dataset=dataset.dataset_slug,
                              on_bytes=lambda done, total: progress.append((done, total)))
    size = path.stat().st_size
    assert not upload.multipart and upload.size == size
    assert progress[-1] == (size, size)
    assert all(a[0] <= b[0] for a, b in zip(progress, progress[1:], strict=False))
    states: list[JobOut] = []
    job = c.uploads.wait(upload, on_update=states.append, timeout=90)
    assert job.status == "COMPLETED", job.error
    assert job.progress == 2500
    assert c.jobs.events_supported is True
    assert states[-1].status == "COMPLETED"
    state = c.datasets.get(dataset.dataset_slug).questdb_state
    assert state is not None and state.ohlcv.row_count == 2500


def test_multipart_upload_streams_parts(c, dataset, tmp_path, settings):
    # Just above the threshold the gateway's settings use: the smallest file that goes multipart.
    target = settings.uploads.multipart_threshold_bytes + 1024 * 1024
    rows = write_ohlcv_bytes(tmp_path / "big.csv", target)
    progress: list[int] = []
    upload = c.uploads.upload(tmp_path / "big.csv", kind="ohlcv", dataset=dataset.dataset_slug,
                              on_bytes=lambda done, total: progress.append(done))
    assert upload.multipart and upload.parts >= 2
    assert progress[-1] == upload.size == (tmp_path / "big.csv").stat().st_size
    job = c.uploads.wait(upload, timeout=120)
    assert job.status == "COMPLETED", job.error
    assert job.progress == rows


def test_failed_import_is_reported(c, dataset, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,open\n1704067200,1.0\n")  # no high/low/close/volume
    upload = c.uploads.upload(bad, kind="ohlcv", dataset=dataset.dataset_slug)
    job = c.uploads.wait(upload, timeout=60)
    assert job.status == "FAILED"
    assert "close" in (job.error or "")


def test_watch_by_polling_and_by_events_see_the_same_end(c):
    for use_events in (False, True):
        job_id = new_job(total=10)
        states: list[str] = []

        def drive(job_id: str = job_id) -> None:
            time.sleep(0.4)
            jobs.claim(job_id, "client-test")
            jobs.report_progress(job_id, "client-test", 5)
            time.sleep(0.3)
            jobs.complete(job_id, "client-test", {"ok": True}, progress=10)

        thread = threading.Thread(target=drive)
        thread.start()
        job = c.jobs.watch(job_id, use_events=use_events, poll_interval=0.2, timeout=30,
                           on_update=lambda j: states.append(f"{j.status}:{j.progress}"))
        thread.join()
        assert (job.status, job.progress, job.result) == ("COMPLETED", 10, {"ok": True})
        assert states[0] == "PENDING:0" and states[-1] == "COMPLETED:10"


def test_watch_timeout_and_bad_id(c):
    job_id = new_job()
    try:
        with pytest.raises(ApiError) as info:
            c.jobs.watch(job_id, timeout=1.0, poll_interval=0.2)
        assert info.value.status == 0 and info.value.details["status"] == "PENDING"
    finally:
        c.jobs.cancel(job_id)
    with pytest.raises(ApiError):
        c.jobs.get("nope")
    listed = c.jobs.list(job_type="client_test", limit=5)
    assert listed.items and all(j.job_type == "client_test" for j in listed.items)
