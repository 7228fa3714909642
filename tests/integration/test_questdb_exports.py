"""The large-read contract of POST /api/questdb/export: inline (200) when small, an export job (202)
when large or asked for, and the job's presigned URL downloads exactly QuestDB's rows.

A gateway of its own runs here with a 20 kB inline cap (`STAGE1_EXPORT_INLINE_MAX_BYTES`), so a
few hundred rows take the job path. The Lambda side (Mangum buffers, no streaming) is driven through
the function's own handler with an HttpApi event."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from qdb_fixtures import create_predictions, drop, exp_csv

REPO = Path(__file__).resolve().parents[2]
CAP = 20_000
PART = 5 * 1024 * 1024  # the smallest multipart part S3 allows
ROWS = 2_000  # ~150 kB of CSV: well over the cap
INLINE_SECONDS = 3  # the test gateway's export_max_timeout: how long an inline read may take


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def small_cap_gateway():
    port = free_port()
    env = {**os.environ, "STAGE1_EXPORT_INLINE_MAX_BYTES": str(CAP), "STAGE1_EXPORT_PART_BYTES": str(PART),
           "STAGE1_EXPORT_MAX_TIMEOUT": str(INLINE_SECONDS),
           "STAGE1_GATEWAY_URL": f"http://127.0.0.1:{port}"}
    proc = subprocess.Popen([sys.executable, "-m", "stage1_local.gateway", "--port", str(port)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        else:
            pytest.fail("the test gateway did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(15)


@pytest.fixture
def small(small_cap_gateway, api_headers):
    with httpx.Client(base_url=small_cap_gateway, headers=api_headers, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def predictions():
    name = f"zzq5x_{uuid.uuid4().hex[:8]}_wf"
    create_predictions(name, ROWS)
    yield name
    drop(name)


EXPORTED: list[str] = []  # object keys this module's jobs wrote, removed at the end


@pytest.fixture(scope="module", autouse=True)
def remove_exported_objects(settings):
    yield
    from stage1.core.storage import get_s3

    for key in EXPORTED:
        with contextlib.suppress(Exception):
            get_s3().delete_object(Bucket=settings.store.bucket, Key=key)


def wait_job(client: httpx.Client, poll_url: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(poll_url).json()
        if job["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
            if isinstance(job.get("result"), dict) and job["result"].get("key"):
                EXPORTED.append(job["result"]["key"])
            return job
        time.sleep(0.2)
    raise AssertionError(f"job still {job['status']} after {timeout} s")


def test_small_result_answers_inline(small, predictions):
    sql = f"select * from {predictions} where bar_index < 10"
    r = small.post("/api/questdb/export", json={"sql": sql})
    assert r.status_code == 200 and r.content == exp_csv(sql)


def test_large_result_becomes_a_job_whose_url_downloads_the_rows(small, predictions):
    sql = f"select * from {predictions} order by timestamp"
    expected = exp_csv(sql)
    assert len(expected) > CAP
    r = small.post("/api/questdb/export", json={"sql": sql, "filename": "wf-preds"})
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert accepted["status"] == "PENDING" and accepted["poll_url"] == f"/api/jobs/{accepted['job_id']}"
    assert r.headers["location"] == accepted["poll_url"]
    job = wait_job(small, accepted["poll_url"])
    assert job["status"] == "COMPLETED", job
    assert job["job_type"] == "export"
    result = job["result"]
    assert result["key"] == f"exports/{accepted['job_id']}/wf-preds.csv"
    assert (result["format"], result["rows"], result["bytes"]) == ("csv", ROWS, len(expected))
    assert job["progress"] == ROWS
    download = httpx.get(result["url"], timeout=60)  # presigned: no token, straight from the store
    assert download.status_code == 200
    assert download.content == expected
    assert 'filename="wf-preds.csv"' in download.headers["content-disposition"]
    lines = download.text.splitlines()
    assert len(lines) == ROWS + 1 and lines[1].startswith('"2024-01-01T00:00:00.000000Z",0,0,')


def test_job_mode_parquet(small, predictions):
    import pyarrow.parquet as pq

    sql = f"select bar_index, fold_number, prediction from {predictions}"
    r = small.post("/api/questdb/export", params={"mode": "job"}, json={"sql": sql, "format": "parquet"})
    assert r.status_code == 202, r.text
    job = wait_job(small, r.json()["poll_url"])
    assert job["status"] == "COMPLETED", job
    assert job["result"]["key"].endswith("/export.parquet") and job["result"]["rows"] is None
    table = pq.read_table(io.BytesIO(httpx.get(job["result"]["url"], timeout=60).content))
    assert table.num_rows == ROWS
    assert table.column("bar_index").to_pylist() == list(range(ROWS))
    assert table.column("fold_number").to_pylist()[:4] == [0, 1, 2, 0]


def test_job_mode_refuses_bad_sql_at_once(small, predictions):
    r = small.post("/api/questdb/export", params={"mode": "job"}, json={"sql": f"select nosuch from {predictions}"})
    assert r.status_code == 400, r.text
    assert r.json()["details"]["questdb"] == "Invalid column: nosuch"
    r = small.post("/api/questdb/export", params={"mode": "job"}, json={"sql": f"drop table {predictions}"})
    assert r.status_code == 400


def test_inline_mode_streams_past_the_cap_locally(small, predictions):
    sql = f"select * from {predictions}"
    r = small.post("/api/questdb/export", params={"mode": "inline"}, json={"sql": sql})
    assert r.status_code == 200 and r.content == exp_csv(sql)


def lambda_event(path: str, query: str, body: dict) -> dict:
    """An HttpApi (payload 2.0) event as API Gateway sends it, with the authorizer's context."""
    return {
        "version": "2.0", "routeKey": f"POST {path}", "rawPath": path, "rawQueryString": query,
        "headers": {"content-type": "application/json", "host": "api.example.com"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "api.example.com", "domainPrefix": "api",
            "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                     "userAgent": "pytest"},
            "requestId": "q5-lambda", "routeKey": f"POST {path}", "stage": "$default", "time": "", "timeEpoch": 0,
            "authorizer": {"lambda": {"token_id": "t", "token_name": "pytest", "scopes": "read"}},
        },
        "body": json.dumps(body), "isBase64Encoded": False,
    }


def test_on_lambda_inline_is_capped_and_auto_still_inline_when_small(settings, predictions):
    from stage1_local.template import functions, load_handler

    handler = load_handler(functions()["QuestDbFunction"])
    big = f"select x, x * 3 y from long_sequence({settings.exports.export_inline_max_bytes // 8})"
    out = handler(lambda_event("/api/questdb/export", "mode=inline", {"sql": big}), None)
    assert out["statusCode"] == 413, out.get("body", "")[:300]
    assert json.loads(out["body"])["details"]["limit_bytes"] == settings.exports.export_inline_max_bytes
    wide = "select rpad('x', 60000, 'y') s from long_sequence(10000)"  # query rows stream, stop at the cap
    out = handler(lambda_event("/api/questdb/query", "limit=10000", {"sql": wide}), None)
    assert out["statusCode"] == 200, out.get("body", "")[:300]
    assert len(out["body"]) < 6_000_000 and json.loads(out["body"])["truncated"] is True
    sql = f"select * from {predictions} where bar_index < 5"
    out = handler(lambda_event("/api/questdb/export", "", {"sql": sql}), None)
    assert out["statusCode"] == 200
    body = base64.b64decode(out["body"]) if out.get("isBase64Encoded") else out["body"].encode()
    assert body == exp_csv(sql)


# --- the same contract on the resource reads (datasets, runs, simulations) ---------------------

@pytest.fixture(scope="module")
def run_with_predictions(small_cap_gateway, api_headers):
    """A dataset and a run of 1,500 predictions (~90 kB of CSV), created through the API."""
    from resources_support import dataset, predictions

    with httpx.Client(base_url=small_cap_gateway, headers=api_headers, timeout=120) as c, \
            dataset(c, f"zzq5r_{uuid.uuid4().hex[:8]}") as ds:
        rows = predictions(1500, 3, ["threshold_0"])
        r = c.post("/api/runs", json={"dataset_id": ds["dataset_id"], "target_column": "y", "predictions": rows,
                                      "threshold_columns": ["threshold_0"]})
        assert r.status_code == 201, r.text
        yield ds, r.json()
        c.delete(f"/api/runs/{r.json()['run_id']}")


def test_predictions_csv_over_the_cap_becomes_a_job(small, run_with_predictions):
    _, run = run_with_predictions
    url = f"/api/runs/{run['run_id']}/predictions"
    streamed = small.get(url, params={"format": "csv", "mode": "inline"})  # the local gateway streams
    assert streamed.status_code == 200, streamed.text[:300]
    assert len(streamed.content) > CAP
    lines = streamed.text.splitlines()
    assert lines[0] == '"timestamp","bar_index","fold_number","prediction","target","threshold_0"'
    assert len(lines) == 1501

    r = small.get(url, params={"format": "csv"})  # mode=auto
    assert r.status_code == 202, r.text[:300]
    job = wait_job(small, r.json()["poll_url"])
    assert job["status"] == "COMPLETED", job
    assert job["result"]["key"].startswith(f"exports/{r.json()['job_id']}/")
    assert job["result"]["rows"] == 1500
    assert httpx.get(job["result"]["url"], timeout=60).content == streamed.content

    r = small.get(f"/api/runs/{run['run_id']}", params={"download_predictions": "true"})
    assert r.status_code == 202
    assert wait_job(small, r.json()["poll_url"])["status"] == "COMPLETED"
    # Small answers stay inline, and JSON pages are untouched by `mode`.
    few = small.get(url, params={"format": "csv", "fold": 0, "limit": 10})
    assert few.status_code == 200, few.text[:300]
    assert len(few.text.splitlines()) == 11
    page = small.get(url, params={"limit": 5, "mode": "job"})
    assert page.status_code == 200, page.text[:300]
    assert len(page.json()["predictions"]) == 5


def test_resource_job_of_a_missing_run_is_404_before_any_job(small):
    r = small.get(f"/api/runs/{uuid.uuid4()}/predictions", params={"format": "csv", "mode": "job"})
    assert r.status_code == 404


def test_ohlcv_and_trades_csv_jobs(small, run_with_predictions):
    from resources_support import START, ohlcv_rows, write_table

    from stage1.timeseries.kinds import Kind

    ds, run = run_with_predictions
    write_table(Kind.OHLCV, ds["ohlcv_measurement"], ohlcv_rows(800))
    r = small.get(f"/api/datasets/{ds['dataset_id']}/ohlcv", params={"format": "csv", "mode": "job"})
    assert r.status_code == 202, r.text[:300]
    job = wait_job(small, r.json()["poll_url"])
    assert job["status"] == "COMPLETED" and job["result"]["rows"] == 800
    inline = small.get(f"/api/datasets/{ds['dataset_id']}/ohlcv", params={"format": "csv", "mode": "inline"})
    assert inline.status_code == 200, inline.text[:300]
    assert httpx.get(job["result"]["url"], timeout=60).content == inline.content

    trades = [{"bar_timestamp": START + i * 3600, "side": "long" if i % 2 else "short", "entry_price": 100.0,
               "exit_price": 101.0, "quantity": 1.0, "pnl": 1.0, "return_pct": 1.0} for i in range(600)]
    r = small.post("/api/simulations", json={"run_id": run["run_id"], "trades": trades})
    assert r.status_code == 201, r.text[:300]
    sim = r.json()["simulation_id"]
    r = small.get(f"/api/simulations/{sim}/trades", params={"format": "csv"})
    assert r.status_code == 202, r.text[:300]  # ~60 kB of trades from Postgres: over the 20 kB cap
    job = wait_job(small, r.json()["poll_url"])
    assert job["status"] == "COMPLETED" and job["result"]["rows"] == 600
    inline = small.get(f"/api/simulations/{sim}/trades", params={"format": "csv", "mode": "inline"})
    assert inline.status_code == 200, inline.text[:300]
    assert httpx.get(job["result"]["url"], timeout=60).content == inline.content
    small.delete(f"/api/simulations/{sim}")


def test_multipart_job_of_several_parts_leaves_no_upload_behind(small, settings):
    """~20 MB of CSV: four 5 MiB parts, uploaded while the next fills; the object is QuestDB's bytes."""
    from stage1.core.storage import get_s3

    sql = "select x, x * 3 y, x % 7 z, 'abcdefghij' s from long_sequence(800000)"
    expected = exp_csv(sql)
    assert len(expected) > 3 * PART
    r = small.post("/api/questdb/export", params={"mode": "job", "timeout": 120}, json={"sql": sql})
    assert r.status_code == 202, r.text
    job = wait_job(small, r.json()["poll_url"], timeout=120)
    assert job["status"] == "COMPLETED", job
    assert (job["result"]["rows"], job["result"]["bytes"]) == (800_000, len(expected))
    assert httpx.get(job["result"]["url"], timeout=120).content == expected
    pending = get_s3().list_multipart_uploads(Bucket=settings.store.bucket, Prefix=f"exports/{job['job_id']}/")
    assert not pending.get("Uploads")


def test_cancelling_an_export_job_stops_it_and_leaves_nothing(small, settings):
    from stage1.core.storage import get_s3

    sql = "select x, rnd_double() d from long_sequence(2000000000)"  # tens of GB: it would run for minutes
    r = small.post("/api/questdb/export", params={"mode": "job", "timeout": 600}, json={"sql": sql})
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    deadline = time.monotonic() + 30
    while small.get(f"/api/jobs/{job_id}").json()["status"] == "PENDING" and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1)
    assert small.post(f"/api/jobs/{job_id}/cancel").status_code == 200
    job = wait_job(small, f"/api/jobs/{job_id}", timeout=30)
    assert job["status"] == "CANCELLED", job
    time.sleep(7)  # the worker notices at its next heartbeat (5 s) and aborts the upload
    s3 = get_s3()
    assert not s3.list_multipart_uploads(Bucket=settings.store.bucket, Prefix=f"exports/{job_id}/").get("Uploads")
    assert not s3.list_objects_v2(Bucket=settings.store.bucket, Prefix=f"exports/{job_id}/").get("Contents")
    assert small.get(f"/api/jobs/{job_id}").json()["status"] == "CANCELLED"


def test_csv_reads_neutralise_formula_cells(small, run_with_predictions):
    """CSV injection: a trade side or any text such as `=HYPERLINK("http://x")` reads back as
    `'=HYPERLINK(...)` in every CSV (Postgres COPY of trades, QuestDB /exp inline and as a job);
    numbers like -1.5 are unchanged. Before: the cell came back as it was, a live formula."""
    import csv

    _, run = run_with_predictions
    evil = '=HYPERLINK("http://x")'
    trades = [{"bar_timestamp": 1_700_000_000 + i, "side": side, "entry_price": 100.0, "exit_price": 98.5,
               "quantity": 1.0, "pnl": -1.5, "return_pct": -1.5} for i, side in enumerate([evil, "@cmd", "long"])]
    r = small.post("/api/simulations", json={"run_id": run["run_id"], "trades": trades})
    assert r.status_code == 201, r.text[:300]
    sim = r.json()["simulation_id"]
    try:
        got = small.get(f"/api/simulations/{sim}/trades", params={"format": "csv"})
        assert got.status_code == 200, got.text[:300]
        rows = list(csv.DictReader(io.StringIO(got.text)))
        assert [row["side"] for row in rows] == ["'" + evil, "'@cmd", "long"]
        assert {row["pnl"] for row in rows} == {"-1.5"}
    finally:
        small.delete(f"/api/simulations/{sim}")

    sql = f"select '{evil}' s, -1.5 n, '-2' t, cast('+x' as symbol) y from long_sequence(2)"
    inline = small.post("/api/questdb/export", json={"sql": sql})
    assert inline.status_code == 200, inline.text[:300]
    assert list(csv.reader(io.StringIO(inline.text)))[1] == ["'" + evil, "-1.5", "-2", "'+x"]
    r = small.post("/api/questdb/export", params={"mode": "job"}, json={"sql": sql})
    assert r.status_code == 202, r.text[:300]
    job = wait_job(small, r.json()["poll_url"])
    assert job["status"] == "COMPLETED", job
    assert httpx.get(job["result"]["url"], timeout=60).content == inline.content


def test_json_pages_are_bounded_by_bytes(small, settings):
    """An indicators table with a 30 kB text cell per row: a 300-row JSON page was ~9 MB (over
    Lambda's 6 MB answer, all of it in memory); now the page is cut by bytes and pages on."""
    from resources_support import START, dataset, write_table

    from stage1.timeseries.kinds import Kind

    with dataset(small, f"zzq5p_{uuid.uuid4().hex[:8]}") as ds:
        note = "n" * 30_000
        for first in range(0, 300, 50):  # ILP requests of ~1.5 MB
            rows = [{"timestamp": START + i * 3600, "rsi_14": float(i), "note": note} for i in range(first, first + 50)]
            write_table(Kind.INDICATORS, ds["indicator_measurement"], rows)
        url = f"/api/datasets/{ds['dataset_id']}/indicators"
        seen, offset, pages = [], 0, 0
        while offset is not None:
            r = small.get(url, params={"limit": 300, "offset": offset})
            assert r.status_code == 200, r.text[:300]
            assert len(r.content) <= settings.queries.page_max_bytes + 10_000
            body = r.json()
            assert body["total"] == 300
            seen += [row["rsi_14"] for row in body["rows"]]
            offset, pages = body["next_offset"], pages + 1
        assert seen == [float(i) for i in range(300)] and pages > 1


def test_a_slow_auto_export_becomes_a_job_before_the_inline_budget_ends(small):
    """mode=auto: a statement that produces nothing within the inline budget (export_max_timeout,
    3 s here, 25 s by default: under the API Lambda's 29 s) is handed to a job, which has the
    request's whole timeout; before, the request held on to the caller's timeout (up to 900 s)."""
    slow = {"sql": "select sum(rnd_double()) from long_sequence(5000000000)"}
    started = time.monotonic()
    r = small.post("/api/questdb/export", params={"timeout": 6}, json=slow)
    assert r.status_code == 202, r.text[:300]
    assert time.monotonic() - started < INLINE_SECONDS + 2
    job = wait_job(small, r.json()["poll_url"], timeout=30)
    assert job["status"] == "FAILED" and "timed out after 6 s" in job["error"], job
    r = small.post("/api/questdb/export", params={"timeout": 2}, json=slow)  # no more time for a job
    assert r.status_code == 504 and r.json()["details"] == {"timeout_seconds": 2.0}
    r = small.post("/api/questdb/export", params={"timeout": 5, "mode": "inline"}, json=slow)
    assert r.status_code == 400 and r.json()["details"]["max_timeout_seconds"] == INLINE_SECONDS
