"""The `stage1` console script, run as a user runs it (a subprocess of the installed entry point)
against the gateway: tables, JSON, upload with its import, jobs watch, exit codes, one-line errors."""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time

import pytest
from client_support import STAGE1, cancel_leftover_jobs, cli_env, new_job, unique_slug, write_ohlcv

from stage1.jobs import service as jobs
from stage1_client import ApiError, Client


@pytest.fixture(autouse=True)
def _tidy_jobs():
    yield
    cancel_leftover_jobs()


@pytest.fixture
def stage1(gateway_url, api_token):
    env = cli_env(gateway_url, api_token)

    def run(*args: str, timeout: float = 90, extra_env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([STAGE1, *args], capture_output=True, text=True, timeout=timeout,
                              env={**env, **(extra_env or {})})

    return run


@pytest.fixture
def dataset(gateway_url, api_token):
    slug = unique_slug("cli")
    with Client(gateway_url, api_token) as c:
        c.datasets.upsert({"dataset_slug": slug, "symbol": "SOL", "granularity": "1m"})
        yield slug
        with contextlib.suppress(ApiError):
            c.datasets.delete(slug, cascade=True, drop_questdb=True)


def test_datasets_list_and_show(stage1, dataset):
    r = stage1("datasets", "list", "--search", dataset)
    assert r.returncode == 0, r.stderr
    assert "Datasets" in r.stdout and dataset in r.stdout and "SOL" in r.stdout
    assert "1-1 of 1" in r.stdout
    r = stage1("datasets", "show", dataset)
    assert r.returncode == 0, r.stderr
    assert f"{dataset}_ohlcv" in r.stdout and "QuestDB" in r.stdout
    r = stage1("--json", "datasets", "show", dataset)
    assert r.returncode == 0
    assert json.loads(r.stdout)["dataset_slug"] == dataset


def test_newcomer_flow_create_then_upload(stage1, tmp_path, gateway_url, api_token):
    slug = unique_slug("cli_new")
    path = write_ohlcv(tmp_path / "bars.csv", 500)
    r = stage1("upload", str(path), "--dataset", slug, "--kind", "ohlcv")
    assert r.returncode == 4  # not found
    assert f"(create it first: stage1 datasets create {slug})" in r.stderr
    try:
        r = stage1("datasets", "create", slug, "--symbol", "BTC", "--granularity", "1h")
        assert r.returncode == 0, r.stderr
        assert f"dataset {slug} (" in r.stderr and f"{slug}_ohlcv" in r.stderr
        r = stage1("upload", str(path), "--dataset", slug, "--kind", "ohlcv")
        assert r.returncode == 0, r.stderr
        assert "COMPLETED: 500 rows" in r.stderr
        r = stage1("--json", "datasets", "show", slug)
        assert json.loads(r.stdout)["questdb_state"]["ohlcv"]["row_count"] == 500
    finally:
        with Client(gateway_url, api_token) as c, contextlib.suppress(ApiError):
            c.datasets.delete(slug, cascade=True, drop_questdb=True)


def test_errors_are_one_line_with_nonzero_exit(stage1, gateway_url):
    r = stage1("datasets", "show", "no_such_" + unique_slug("x"))
    assert r.returncode == 4  # not found (docs/client.md, exit codes)
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stage1: error: 404 dataset not found")
    r = stage1("runs", "list", extra_env={"STAGE1_TOKEN": "s1_wrong"})
    assert r.returncode == 3 and r.stderr.strip() == "stage1: error: 401 invalid token"  # auth
    r = stage1("--url", "http://127.0.0.1:9", "jobs", "list")
    assert r.returncode == 5 and "cannot reach http://127.0.0.1:9" in r.stderr  # unreachable
    r = stage1("upload", "x.csv", "--kind", "ohlcv")  # --dataset missing: usage error
    assert r.returncode == 2 and "--dataset" in r.stderr


def test_runs_and_simulations_list_and_show(stage1, dataset, gateway_url, api_token):
    with Client(gateway_url, api_token) as c:
        run = c.runs.create({"dataset_slug": dataset, "target_column": "y",
                             "folds": [{"fold_number": 0, "metrics": {"auc": 0.7}}],
                             "predictions": [{"timestamp": 1_704_067_200 + i * 60, "fold_number": 0,
                                              "prediction": 0.5} for i in range(10)]})
        sim = c.simulations.create({"run_id": str(run.run_id), "name": "cli sim",
                                    "trades": [{"bar_timestamp": 1_704_067_200, "side": "long", "pnl": 2.5}]})
    r = stage1("runs", "list", "--dataset", dataset)
    assert r.returncode == 0, r.stderr
    assert str(run.run_id) in r.stdout and run.prediction_measurement in r.stdout
    r = stage1("runs", "show", str(run.run_id))
    assert r.returncode == 0, r.stderr
    assert "Folds" in r.stdout and '"auc":0.7' in r.stdout
    r = stage1("simulations", "list", "--run", str(run.run_id))
    assert r.returncode == 0 and str(sim.simulation_id) in r.stdout
    r = stage1("simulations", "show", str(sim.simulation_id))
    assert r.returncode == 0, r.stderr
    assert "Trade buckets" in r.stdout and "100.0%" in r.stdout


def test_upload_follows_the_import_to_completed(stage1, dataset, tmp_path, gateway_url, api_token):
    path = write_ohlcv(tmp_path / "bars.csv", 3000)
    r = stage1("upload", str(path), "--dataset", dataset, "--kind", "ohlcv")
    assert r.returncode == 0, r.stderr
    assert f"uploaded bars.csv: {path.stat().st_size:,} bytes" in r.stderr
    assert "COMPLETED: 3,000 rows" in r.stderr
    with Client(gateway_url, api_token) as c:
        assert c.datasets.get(dataset).questdb_state.ohlcv.row_count == 3000


def test_upload_of_a_bad_file_exits_1(stage1, dataset, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,open\n1704067200,1.0\n")
    r = stage1("--no-events", "upload", str(bad), "--dataset", dataset, "--kind", "ohlcv")
    assert r.returncode == 1
    assert "FAILED" in r.stderr and "missing" in r.stderr


def test_upload_no_wait_prints_the_job(stage1, dataset, tmp_path):
    path = write_ohlcv(tmp_path / "bars.csv", 100)
    r = stage1("upload", str(path), "--dataset", dataset, "--kind", "ohlcv", "--no-wait")
    assert r.returncode == 0, r.stderr
    job_id = r.stdout.strip()
    r = stage1("jobs", "watch", job_id, "--wait", "60")
    assert r.returncode == 0, r.stderr
    r = stage1("--json", "jobs", "show", job_id)
    assert json.loads(r.stdout)["status"] == "COMPLETED"


@pytest.mark.parametrize("events", [True, False])
@pytest.mark.parametrize("outcome", ["COMPLETED", "FAILED"])
def test_jobs_watch_exit_code(stage1, events, outcome):
    job_id = new_job(total=40)

    def drive() -> None:
        time.sleep(1.0)
        jobs.claim(job_id, "cli-test")
        jobs.report_progress(job_id, "cli-test", 20)
        time.sleep(0.3)
        if outcome == "COMPLETED":
            jobs.complete(job_id, "cli-test", {"rows": 40}, progress=40)
        else:
            jobs.fail(job_id, "cli-test", "synthetic failure")

    thread = threading.Thread(target=drive)
    thread.start()
    args = ([] if events else ["--no-events"]) + ["jobs", "watch", job_id, "--wait", "30"]
    r = stage1(*args)
    thread.join()
    if outcome == "COMPLETED":
        assert r.returncode == 0, r.stderr
        assert f"job {job_id} COMPLETED: 40 rows" in r.stderr
    else:
        assert r.returncode == 1
        assert r.stderr.strip().endswith(f"job {job_id} FAILED: synthetic failure")


def test_jobs_watch_gives_up_with_exit_6_and_jobs_list(stage1):
    job_id = new_job()
    try:
        r = stage1("jobs", "watch", job_id, "--wait", "1")
        assert r.returncode == 6, r.stderr  # EXIT_TIMEOUT (docs/client.md, exit codes)
        assert "gave up waiting" in r.stderr
        r = stage1("jobs", "list", "--type", "client_test", "--status", "PENDING", "--limit", "100")
        assert r.returncode == 0 and job_id in r.stdout
    finally:
        jobs.cancel(job_id)


def test_predictions_download(stage1, dataset, tmp_path, gateway_url, api_token):
    with Client(gateway_url, api_token) as c:
        run = c.runs.create({"dataset_slug": dataset, "folds": [{"fold_number": 0}],
                             "predictions": [{"timestamp": 1_704_067_200 + i * 60, "fold_number": 0,
                                              "prediction": i / 100, "target": 1.0} for i in range(100)]})
    out = tmp_path / "preds.csv"
    r = stage1("predictions", str(run.run_id), "-o", str(out))
    assert r.returncode == 0, r.stderr
    import csv

    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["timestamp", "bar_index", "fold_number", "prediction", "target"]
    assert len(rows) == 101 and rows[1][0] == "1704067200" and float(rows[100][3]) == 0.99
    r = stage1("predictions", str(run.run_id), "-o", str(tmp_path / "preds.parquet"))
    assert r.returncode == 0, r.stderr
    import pyarrow.parquet as pq

    assert pq.read_metadata(tmp_path / "preds.parquet").num_rows == 100
    r = stage1("predictions", "00000000-0000-0000-0000-000000000000", "-o", str(tmp_path / "x.csv"))
    assert r.returncode == 4 and "404" in r.stderr
    assert not (tmp_path / "x.csv").exists()
