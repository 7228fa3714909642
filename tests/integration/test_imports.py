"""Uploads and imports through the real path: client → presigned URL → MinIO → webhook →
gateway:3000 → importer → QuestDB, with the job polled through the API."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from imports_support import (
    T0,
    count,
    drop,
    encode,
    gz,
    ohlcv_csv,
    ohlcv_table,
    post_file,
    rows,
    start_upload,
    upload,
    wait_job,
)

from stage1.core import db, storage
from stage1.core.questdb import get_questdb
from stage1.jobs import service as jobs

JOB_FIELDS = {"job_id", "job_type", "status", "progress", "total", "result", "error", "attempts", "created_at",
              "updated_at", "started_at", "completed_at"}


@pytest.fixture
def table(unique):
    name = f"zz_imp_{unique}"
    yield name
    drop(name)


def test_presigned_post_csv_imports_every_row_with_its_values(client, table):
    data = ohlcv_csv(2_000)
    up = upload(client, data, "bars.csv", table)
    assert up["method"] == "POST" and up["fields"]["key"] == up["object_key"]
    assert up["object_key"].startswith(f"uploads/{up['upload_id']}/") and "bars" not in up["object_key"]
    job = wait_job(client, up["job_id"])
    assert set(job) == JOB_FIELDS
    assert job["status"] == "COMPLETED", job
    assert job["progress"] == job["total"] == 2_000 and job["attempts"] == 1
    assert job["result"]["rows"] == 2_000 and job["result"]["table_rows"] == 2_000
    assert job["result"]["first_ts"] == T0 and job["result"]["last_ts"] == T0 + 60 * 1_999
    assert count(table) == 2_000
    first = rows(table, 2)
    assert first[0]["timestamp"].startswith("2023-11-14T22:13:20")
    assert (first[0]["open"], first[0]["high"], first[0]["low"], first[0]["close"], first[0]["volume"]) == (
        100.0, 101.0, 99.0, 100.5, 0.0)
    assert first[1]["open"] == 100.1 and first[1]["volume"] == 1.0
    # The table is a WAL table that dedups on the timestamp.
    meta = get_questdb().exec(f"select walEnabled, dedup from tables() where table_name = '{table}'").dataset
    assert meta == [[True, True]]


@pytest.mark.parametrize("fmt", ["csv.gz", "parquet", "arrow", "arrows"])
def test_other_formats(client, table, fmt):
    n = 5_000
    t = ohlcv_table(n)
    data = gz(ohlcv_csv(n)) if fmt == "csv.gz" else encode(t, fmt)
    name = {"csv.gz": "x.csv.gz", "parquet": "x.parquet", "arrow": "x.arrow", "arrows": "x.arrows"}[fmt]
    job = wait_job(client, upload(client, data, name, table)["job_id"])
    assert job["status"] == "COMPLETED", job
    assert job["result"]["rows"] == n and count(table) == n
    assert rows(table, 1)[0]["close"] == 100.5


def test_timestamps_in_ms_and_iso_strings_land_on_the_same_instants(client, unique):
    ms, iso = f"zz_imp_ms_{unique}", f"zz_imp_iso_{unique}"
    try:
        a = b"timestamp,prediction\n1700000000000,0.25\n1700000060000,0.5\n"
        b = b"timestamp,prediction\n2023-11-14T22:13:20Z,0.25\n2023-11-14T22:14:20+00:00,0.5\n"
        ja = wait_job(client, upload(client, a, "a.csv", ms, "predictions")["job_id"])
        jb = wait_job(client, upload(client, b, "b.csv", iso, "predictions")["job_id"])
        assert ja["status"] == jb["status"] == "COMPLETED", (ja, jb)
        assert [r["timestamp"] for r in rows(ms)] == [r["timestamp"] for r in rows(iso)]
        assert rows(ms)[0]["timestamp"].startswith("2023-11-14T22:13:20.000000")
    finally:
        drop(ms)
        drop(iso)


def test_multipart_upload_of_a_larger_file(client, table):
    n = 1_700_000
    data = ohlcv_csv(n)  # ~75 MB: above the 64 MiB threshold
    assert len(data) > 64 * 1024**2
    up = start_upload(client, "big.csv", len(data), table)
    assert up["method"] == "PUT" and up["multipart"] and len(up["parts"]) >= 2
    size = up["part_size"]
    etags = []
    with httpx.Client(timeout=120) as raw:
        for part in up["parts"]:
            chunk = data[(part["part_number"] - 1) * size: part["part_number"] * size]
            r = raw.put(part["url"], content=chunk)
            assert r.status_code == 200, r.text
            etags.append({"part_number": part["part_number"], "etag": r.headers["etag"]})
    r = client.post(up["complete_url"], json={"parts": etags})
    assert r.status_code == 200, r.text
    assert r.json()["uploaded"] is True and r.json()["size"] == len(data)
    job = wait_job(client, up["job_id"], timeout=180)
    assert job["status"] == "COMPLETED", job
    assert count(table) == n
    # Completing again is a harmless nudge.
    again = client.post(up["complete_url"], json={})
    assert again.status_code == 200 and again.json()["status"] == "COMPLETED"
    assert count(table) == n


def test_malformed_file_fails_with_a_useful_error_and_leaves_no_rows(client, table):
    data = b"timestamp_unix,open,high,low,close,volume\n1700000000,1,2,0.5,1.5,10\n1700000060,1,2,oops,1.5,10\n"
    job = wait_job(client, upload(client, data, "bad.csv", table)["job_id"])
    assert job["status"] == "FAILED"
    assert "oops" in job["error"] and "'low'" in job["error"], job["error"]
    assert job["result"]["error_details"]["column"] == "low"
    assert not get_questdb().table_exists(table) and count(table) == 0


def test_missing_columns_fail_the_upload_listing_them(client, table):
    data = b"timestamp_unix,open,close\n1700000000,1,2\n"
    job = wait_job(client, upload(client, data, "few.csv", table)["job_id"])
    assert job["status"] == "FAILED"
    assert job["result"]["error_details"]["missing_columns"] == ["high", "low", "volume"]
    assert "high" in job["error"] and count(table) == 0


def test_blocking_import_lists_missing_columns_as_a_400(client, table):
    r = client.post(f"/api/questdb/import?measurement={table}&kind=predictions", content=b"timestamp,target\n1,2\n",
                    headers={"content-type": "text/csv"})
    assert r.status_code == 400, r.text
    assert r.json()["details"]["missing_columns"] == ["prediction"]
    r = client.post(f"/api/questdb/import?measurement={table}&kind=predictions", content=b"target\n2\n",
                    headers={"content-type": "text/csv"})
    assert r.status_code == 400 and r.json()["details"]["missing_columns"] == ["timestamp_unix|timestamp", "prediction"]


def test_blocking_import_csv_arrow_and_the_json_form(client, table):
    r = client.post(f"/api/questdb/import?measurement={table}&kind=ohlcv", content=ohlcv_csv(300),
                    headers={"content-type": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "COMPLETED" and r.json()["rows_written"] == 300 and count(table) == 300
    # Arrow body: same rows again (dedup) plus 100 new ones.
    r = client.post(f"/api/questdb/import?measurement={table}&kind=ohlcv", content=encode(ohlcv_table(400), "arrow"),
                    headers={"content-type": "application/vnd.apache.arrow.file"})
    assert r.status_code == 200, r.text
    assert count(table) == 400
    # The JSON shape of the desktop's older client.
    other = table + "_j"
    try:
        r = client.post("/api/questdb/import", json={"measurement": other, "kind": "predictions",
                                                     "data": "timestamp_unix,prediction,target\n1609459200,0.65,1\n"
                                                             "1609459260,0.72,1"})
        assert r.status_code == 200, r.text
        assert count(other) == 2 and rows(other)[1]["prediction"] == 0.72
    finally:
        drop(other)


def test_blocking_import_over_the_limit_is_a_413(client, settings, table):
    body = b"timestamp,prediction\n" + b"1700000000,0.5\n" * (settings.imports.inline_import_max_bytes // 15 + 10)
    r = client.post(f"/api/questdb/import?measurement={table}&kind=predictions", content=body,
                    headers={"content-type": "text/csv"})
    assert r.status_code == 413, r.text[:300]
    assert r.json()["details"]["max_bytes"] == settings.imports.inline_import_max_bytes
    assert count(table) == 0


def test_async_import_returns_a_job_to_poll(client, table):
    r = client.post(f"/api/questdb/import/async?measurement={table}&kind=ohlcv", content=ohlcv_csv(500),
                    headers={"content-type": "text/csv"})
    assert r.status_code == 202, r.text
    body = r.json()
    assert set(body) == {"job_id", "status", "poll_url", "message"}
    assert body["status"] == "PENDING" and body["poll_url"] == f"/api/jobs/{body['job_id']}"
    assert client.get(f"/api/questdb/jobs/{body['job_id']}").status_code == 200
    job = wait_job(client, body["job_id"])
    assert job["status"] == "COMPLETED" and count(table) == 500


def _minio_payload(up: dict, bucket: str) -> dict:
    key = up["object_key"].replace("/", "%2F")
    return {"EventName": "s3:ObjectCreated:Post", "Key": f"{bucket}/{up['object_key']}",
            "Records": [{"eventVersion": "2.0", "eventSource": "minio:s3", "eventName": "s3:ObjectCreated:Post",
                         "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 1}}}]}


def test_the_same_event_three_times_leaves_one_copy(client, gateway_url, settings, table):
    up = upload(client, ohlcv_csv(1_000), "bars.csv", table)
    job = wait_job(client, up["job_id"])
    assert job["status"] == "COMPLETED"
    for _ in range(3):
        r = httpx.post(f"{gateway_url}/_local/s3-events", json=_minio_payload(up, settings.store.bucket),
                       headers={"authorization": f"Bearer {settings.auth.webhook_token}"}
                       if settings.auth.webhook_token else {})
        assert r.status_code == 200
        assert client.post(up["complete_url"]).status_code == 200  # and the nudge, for good measure
    time.sleep(2)
    after = client.get(f"/api/jobs/{up['job_id']}").json()
    assert after["status"] == "COMPLETED" and after["attempts"] == 1
    assert count(table) == 1_000
    # Even a forced re-run of the whole file (retry path) upserts instead of duplicating.
    with db.connection() as conn:
        conn.execute("update stage1_jobs set status = 'FAILED' where job_id = %s", (up["job_id"],))
    assert client.post(f"/api/jobs/{up['job_id']}/retry").status_code == 200
    assert wait_job(client, up["job_id"])["status"] == "COMPLETED"
    assert count(table) == 1_000


def test_minio_webhook_check_and_bad_bodies(gateway_url):
    assert httpx.head(f"{gateway_url}/_local/s3-events").status_code == 200
    r = httpx.post(f"{gateway_url}/_local/s3-events", content=b"not json")
    assert r.status_code in (400, 401)
    r = httpx.post(f"{gateway_url}/_local/s3-events", json={"Records": [
        {"eventName": "s3:ObjectCreated:Put", "s3": {"bucket": {"name": "x"}, "object": {"key": "uploads%2Fnone"}}}]})
    assert r.status_code in (200, 401)


def test_killed_importer_is_rerun_by_the_sweeper_to_the_exact_row_count(client, settings, table):
    n = 1_500_000
    key = f"inline/killtest-{table}/data.csv"  # no ObjectCreated event under inline/: only our subprocess runs it
    storage.get_s3().put_object(Bucket=settings.store.bucket, Key=key, Body=ohlcv_csv(n))
    payload = {"bucket": settings.store.bucket, "key": key, "kind": "ohlcv", "measurement": table, "format": "csv",
               "ready": True}
    with db.connection() as conn:
        job = jobs.create_job(conn, "import", payload, idempotency_key=f"s3://{settings.store.bucket}/{key}")
    code = ("import sys; from stage1_local.template import functions, load_handler; "
            "load_handler(functions()['ImporterFunction'])({'job_id': sys.argv[1]}, None)")
    # Slowed down (one sender, small requests) so that it is surely still running when killed.
    env = {**os.environ, "STAGE1_JOB_LEASE_SECONDS": "3", "STAGE1_IMPORT_SENDERS": "1",
           "STAGE1_IMPORT_BATCH_ROWS": "20000"}
    proc = subprocess.Popen([sys.executable, "-c", code, job.job_id], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            now = jobs.get_job(job.job_id)
            if now.status == "RUNNING" and now.progress > 0:
                break
            assert proc.poll() is None, "the importer finished before it could be killed"
            assert time.monotonic() < deadline, now
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_at = jobs.get_job(job.job_id)
    assert 0 < killed_at.progress < n and killed_at.status == "RUNNING"
    try:
        final = wait_job(client, job.job_id, timeout=180)
        assert final["status"] == "COMPLETED", final
        assert final["attempts"] == 2
        assert count(table) == n
    finally:
        storage.get_s3().delete_object(Bucket=settings.store.bucket, Key=key)


def test_cancel_and_retry_through_the_api(client, table):
    data = ohlcv_csv(100)
    up = start_upload(client, "c.csv", len(data), table)
    r = client.post(f"/api/jobs/{up['job_id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "CANCELLED"
    assert client.post(f"/api/jobs/{up['job_id']}/cancel").json()["status"] == "CANCELLED"  # idempotent
    post_file(up, data)  # the event arrives for a cancelled job: nothing runs
    time.sleep(3)
    assert client.get(f"/api/jobs/{up['job_id']}").json()["status"] == "CANCELLED" and count(table) == 0
    r = client.post(f"/api/jobs/{up['job_id']}/retry")
    assert r.status_code == 200 and r.json()["status"] in ("PENDING", "RUNNING", "COMPLETED")
    job = wait_job(client, up["job_id"])
    assert job["status"] == "COMPLETED" and count(table) == 100
    r = client.post(f"/api/jobs/{up['job_id']}/cancel")
    assert r.status_code == 409 and r.json()["details"]["status"] == "COMPLETED"
    assert client.post(f"/api/jobs/{up['job_id']}/retry").status_code == 409


def test_upload_validation(client, settings, unique):
    base = {"filename": "a.csv", "size": 10, "kind": "ohlcv", "measurement": f"zz_v_{unique}"}
    for bad in ({"kind": "nope"}, {"size": 0}, {"measurement": "Bad-Name"}, {"filename": "a.exe"},
                {"size": settings.uploads.upload_max_bytes + 1}, {"content_type": "image/png"}):
        r = client.post("/api/uploads", json={**base, **bad})
        assert r.status_code == 400, (bad, r.text)
        assert set(r.json()) == {"error", "details"}
    r = client.post("/api/uploads", json={**base, "unknown_field": 1, "content_type": "text/csv"})
    assert r.status_code == 201
    assert client.post("/api/uploads/not-a-uuid/complete").status_code == 404
    assert client.get("/api/jobs/00000000-0000-0000-0000-000000000000").status_code == 404


def test_oversized_object_in_a_presigned_post_is_refused_by_the_store(client, table):
    up = start_upload(client, "s.csv", 50, table)
    r = httpx.post(up["url"], data=up["fields"], files={"file": ("s.csv", ohlcv_csv(50))})
    assert r.status_code == 400 and "EntityTooLarge" in r.text


def test_dataset_upload_updates_the_dataset_counts_and_bounds(client, unique):
    slug = f"zz_ds_{unique}"
    r = client.post("/api/datasets", json={"dataset_slug": slug, "symbol": "BTC", "granularity": "1m"})
    assert r.status_code in (200, 201), r.text
    ds = r.json()
    data = ohlcv_csv(1_000)
    try:
        r = client.post(f"/api/datasets/{slug}/uploads", json={"filename": "o.csv", "size": len(data), "kind": "ohlcv"})
        assert r.status_code == 201, r.text
        up = r.json()
        assert up["measurement"] == ds["ohlcv_measurement"]
        post_file(up, data)
        assert wait_job(client, up["job_id"])["status"] == "COMPLETED"
        detail = client.get(f"/api/datasets/{slug}").json()
        assert detail["ohlcv_rows"] == 1_000
        assert detail["ohlcv_first_ts"] == T0 and detail["ohlcv_last_ts"] == T0 + 60 * 999
    finally:
        client.delete(f"/api/datasets/{slug}?cascade=true")
        drop(ds["ohlcv_measurement"])


def test_job_listing_filters_and_pages(client, table):
    up = start_upload(client, "l.csv", 10, table)
    r = client.get("/api/jobs", params={"status": "PENDING", "job_type": "import", "limit": 5})
    assert r.status_code == 200
    page = r.json()
    assert page["limit"] == 5 and page["total"] >= 1 and all(j["status"] == "PENDING" for j in page["items"])
    assert client.get("/api/jobs", params={"status": "BOGUS"}).status_code == 400
    assert client.get("/api/jobs", params={"limit": 0}).status_code == 400
    client.post(f"/api/jobs/{up['job_id']}/cancel")
    assert json.loads(client.get(f"/api/jobs/{up['job_id']}").text)["status"] == "CANCELLED"


def test_trades_and_indicators_kinds(client, unique):
    trades, ind = f"zz_imp_tr_{unique}", f"zz_imp_ind_{unique}"
    try:
        body = (b"timestamp,side,entry_price,exit_price,quantity,pnl\n"
                b"1700000000,long,100,101,1,1\n1700000000,short,101,100,2,2\n1700000060,long,100,99,1,-1\n")
        r = client.post(f"/api/questdb/import?measurement={trades}&kind=trades", content=body,
                        headers={"content-type": "text/csv"})
        assert r.status_code == 200, r.text
        got = get_questdb().exec(f'select side, trade_index, pnl from "{trades}" order by trade_index').dataset
        assert got == [["long", 0, 1.0], ["short", 1, 2.0], ["long", 2, -1.0]]  # two trades share a bar
        types = dict(get_questdb().exec(f"select \"column\", type from table_columns('{trades}')").dataset)
        assert types["side"] == "SYMBOL" and types["trade_index"] == "LONG"
        # Indicators: any columns; integers in the first rows may turn decimal later (DOUBLE).
        body = b"timestamp_unix,rsi_14,signal\n1700000000,55,1\n1700000060,56.5,0\n"
        r = client.post(f"/api/questdb/import?measurement={ind}&kind=indicators", content=body,
                        headers={"content-type": "text/csv"})
        assert r.status_code == 200, r.text
        assert [row["rsi_14"] for row in rows(ind)] == [55.0, 56.5]
    finally:
        drop(trades)
        drop(ind)


def test_cancel_stops_a_running_import_and_drops_the_table_it_created(client, settings, table):
    n = 1_500_000
    key = f"inline/canceltest-{table}/data.csv"  # no event under inline/: only our subprocess runs it
    storage.get_s3().put_object(Bucket=settings.store.bucket, Key=key, Body=ohlcv_csv(n))
    payload = {"bucket": settings.store.bucket, "key": key, "kind": "ohlcv", "measurement": table, "format": "csv",
               "ready": True}
    with db.connection() as conn:
        job = jobs.create_job(conn, "import", payload, idempotency_key=f"s3://{settings.store.bucket}/{key}")
    code = ("import sys, json; from stage1_local.template import functions, load_handler; "
            "print(json.dumps(load_handler(functions()['ImporterFunction'])({'job_id': sys.argv[1]}, None)))")
    env = {**os.environ, "STAGE1_IMPORT_SENDERS": "1", "STAGE1_IMPORT_BATCH_ROWS": "20000"}
    proc = subprocess.Popen([sys.executable, "-c", code, job.job_id], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 60
        while not ((now := jobs.get_job(job.job_id)).status == "RUNNING" and now.progress > 0):
            assert proc.poll() is None and time.monotonic() < deadline, now
            time.sleep(0.05)
        r = client.post(f"/api/jobs/{job.job_id}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "CANCELLED"
        out, _ = proc.communicate(timeout=30)  # it stops at its next progress report
        assert json.loads(out.strip().splitlines()[-1])["status"] == "CANCELLED"
    finally:
        if proc.poll() is None:
            proc.kill()
        storage.get_s3().delete_object(Bucket=settings.store.bucket, Key=key)
    final = jobs.get_job(job.job_id)
    assert final.status == "CANCELLED" and final.progress < n
    assert not get_questdb().table_exists(table)


def test_a_recorded_aws_s3_event_reaches_the_upload_it_names(client, event, settings, table):
    """AWS's ObjectCreated record (URL-encoded key) handed to the importer handler as Lambda would."""
    from stage1_local.template import functions, load_handler

    data = ohlcv_csv(100)
    up = start_upload(client, "a.csv", len(data), table)
    post_file(up, data)
    assert wait_job(client, up["job_id"])["status"] == "COMPLETED"  # the MinIO event ran it
    ev = event("s3_object_created.json")
    ev["Records"][0]["s3"]["bucket"]["name"] = settings.store.bucket
    ev["Records"][0]["s3"]["object"]["key"] = up["object_key"].replace("/", "%2F")
    ev["Records"].append({**ev["Records"][0], "eventName": "ObjectRemoved:Delete"})
    out = load_handler(functions()["ImporterFunction"])(ev, None)
    assert out["results"] == [{"key": up["object_key"], "job_id": up["job_id"], "status": "COMPLETED",
                               "skipped": True}]
    assert count(table) == 100


def test_ilp_lines_round_trip_backslash_quote_newline_comma(unique):
    """encode_row → QuestDB /write → read back: strings and SYMBOLs with every ILP special byte
    come back byte for byte (the old encoder lost the backslash of a SYMBOL and turned a newline
    in a string into the letter n)."""
    from stage1.core.ilp import encode_row
    from stage1.timeseries.wal import wait_applied as wal_applied

    table = f"zz_ilp_{unique}"
    values = ["a\\b", 'q"uote', "line1\nline2", "c,o m=ma", "cr\rx", "end\\", "\\n literal"]
    q = get_questdb()
    try:
        q.exec(f"create table {table} (timestamp timestamp, tag symbol, note string, v double) "
               "timestamp(timestamp) partition by day wal")
        q.write_lines("".join(encode_row(table, {"note": v, "v": 1.0}, 1_700_000_000_000_000 + i, symbols={"tag": v})
                              for i, v in enumerate(values)).encode())
        wal_applied(table)
        got = q.exec(f"select tag, note from {table} order by timestamp").dataset
        assert [tuple(r) for r in got] == [(v, v) for v in values]
    finally:
        drop(table)


# ---------------------------------------------------------------- all or nothing (holes 3 and 9)
def _dataset(client, unique: str) -> dict:
    r = client.post("/api/datasets", json={"dataset_slug": f"zz_ds_{unique}", "symbol": "BTC", "granularity": "1m"})
    assert r.status_code in (200, 201), r.text
    return r.json()


def _dataset_upload(client, slug: str, data: bytes, before_post=None) -> dict:
    r = client.post(f"/api/datasets/{slug}/uploads", json={"filename": "o.csv", "size": len(data), "kind": "ohlcv"})
    assert r.status_code == 201, r.text
    up = r.json()
    if before_post is not None:
        before_post(up)
    post_file(up, data)
    return up


def _as_if_an_earlier_attempt_created_the_table(up: dict) -> None:
    # What the old importer recorded when its first attempt created the table (then crashed).
    with db.connection() as conn:
        jobs.update_payload(conn, up["job_id"], {"created_table": True})


def _staging_tables(target: str) -> list[str]:
    names = get_questdb().exec("select table_name from tables()").dataset
    return [n for (n,) in names if n.startswith(target[:52]) and "__s" in n]


def _close_sum(table: str) -> float:
    return float(get_questdb().exec(f'select sum(close) from "{table}"').dataset[0][0])


def test_eight_concurrent_imports_of_overlapping_files_into_one_dataset(client, unique):
    """Each file overlaps the next by 750 rows; the union is 2,750 bars. Before: concurrent first
    imports raced on "table missing" and a failing one dropped the table the others filled."""
    from concurrent.futures import ThreadPoolExecutor

    ds = _dataset(client, unique)
    slug, target = ds["dataset_slug"], ds["ohlcv_measurement"]
    files = [ohlcv_csv(1_000, start=T0 + 60 * 250 * k) for k in range(8)]
    try:
        with ThreadPoolExecutor(8) as pool:
            ups = list(pool.map(lambda data: _dataset_upload(client, slug, data), files))
            done = list(pool.map(lambda up: wait_job(client, up["job_id"], timeout=180), ups))
        assert [j["status"] for j in done] == ["COMPLETED"] * 8, [j.get("error") for j in done]
        assert count(target) == 2_750
        assert client.get(f"/api/datasets/{slug}").json()["ohlcv_rows"] == 2_750
        assert client.get(f"/api/datasets/{slug}/ohlcv", params={"limit": 1}).json()["total"] == 2_750
        assert _staging_tables(target) == []
    finally:
        client.delete(f"/api/datasets/{slug}?cascade=true")
        drop(target)


def test_a_failed_import_leaves_the_datasets_rows_exactly_as_they_were(client, unique):
    """200k rows with a bad value at row 150,001: two ILP batches of 60k rows were already sent when
    the parser meets it. Before: those rows stayed in the dataset's table (served by /ohlcv while
    the dataset's count said otherwise), and a retried job that had recorded `created_table` dropped
    the whole table, the earlier import's rows included. Now they were only ever in the job's
    staging table, and no job drops its target."""
    ds = _dataset(client, unique)
    slug, target = ds["dataset_slug"], ds["ohlcv_measurement"]
    try:
        assert wait_job(client, _dataset_upload(client, slug, ohlcv_csv(1_000))["job_id"])["status"] == "COMPLETED"
        before = (count(target), _close_sum(target))
        lines = ohlcv_csv(200_000, start=T0 + 60 * 5_000).split(b"\n")
        lines[150_001] = lines[150_001].rsplit(b",", 2)[0] + b",not-a-number,1.0"
        up = _dataset_upload(client, slug, b"\n".join(lines), before_post=_as_if_an_earlier_attempt_created_the_table)
        job = wait_job(client, up["job_id"], timeout=180)
        assert job["status"] == "FAILED" and "close" in job["error"], job
        assert job["result"]["error_details"]["rows_committed"] == 0
        assert (count(target), _close_sum(target)) == before
        assert client.get(f"/api/datasets/{slug}").json()["ohlcv_rows"] == 1_000
        assert client.get(f"/api/datasets/{slug}/ohlcv", params={"limit": 1}).json()["total"] == 1_000
        assert _staging_tables(target) == []
    finally:
        client.delete(f"/api/datasets/{slug}?cascade=true")
        drop(target)


def test_a_retried_job_whose_staging_table_exists_restarts_from_an_empty_one(client, table):
    """A worker died mid-import: its staging table holds 500 rows of its own (here: rows the file
    does not have) and the sweeper put its job back to PENDING (attempts 1, no lease: what
    `jobs.sweep()` leaves after the lease expired). The next run — here the object's event — drops
    that staging table and imports the file whole: exactly the file's rows, attempt 2, no staging
    table or registration left. (The state is set directly: on a shared stack several gateways'
    sweeper loops race for a job whose lease expires.)"""
    from stage1.imports.core import staging_name
    from stage1.timeseries import ownership as own
    from stage1.timeseries.kinds import Kind, ensure_table

    data = ohlcv_csv(2_000)
    up = start_upload(client, "bars.csv", len(data), table)
    job_id = up["job_id"]
    staging = staging_name(table, job_id)
    try:
        ensure_table(Kind.OHLCV, staging)
        get_questdb().write_lines("".join(
            f"{staging} open=1.0,high=1.0,low=1.0,close=1.0,volume=1.0 {(T0 - 10_000 + k) * 1_000_000}\n"
            for k in range(500)).encode())
        with db.connection() as conn:
            own.claim(conn, staging, own.Owner("job", job_id), "staging", exists=False)
            conn.execute("update stage1_jobs set status = 'PENDING', attempts = 1, started_at = now(), "
                         "error = 'worker lost' where job_id = %s", (job_id,))
        from stage1.timeseries.wal import wait_applied as wal_applied

        wal_applied(staging)
        assert count(staging) == 500
        post_file(up, data)
        job = wait_job(client, job_id)
        assert job["status"] == "COMPLETED", job
        assert job["attempts"] == 2
        assert count(table) == 2_000 and job["result"]["table_rows"] == 2_000
        assert not get_questdb().table_exists(staging)
        with db.connection() as conn:
            assert own.owner_of(conn, staging) is None
    finally:
        drop(staging)


def test_an_outage_release_backs_off_and_retries_until_a_deadline_not_max_attempts():
    """Hole 9: the job was FAILED after 2 attempts within the 8 s QuestDB was down. A release for
    an outage now keeps the job PENDING past max_attempts, each retry later than the last (the
    delay is the outage's age), and fails it only once the deadline since the outage began passed."""
    from stage1.jobs.service import stale_pending

    with db.connection() as conn:
        job = jobs.create_job(conn, "import_outage_probe", {"probe": True}, max_attempts=2)
    try:
        delays = []
        for attempt in range(1, 5):  # twice past max_attempts
            assert jobs.claim(job.job_id, "w") is not None
            with db.connection() as conn:  # as if the outage began `attempt * 10` s ago
                conn.execute("update stage1_jobs set outage_since = now() - make_interval(secs => %s) "
                             "where job_id = %s", (attempt * 10, job.job_id))
            assert jobs.release(job.job_id, "w", "questdb unavailable: refused", deadline_seconds=600,
                                max_delay_seconds=60)
            with db.connection() as conn:
                row = conn.execute("select status, attempts, extract(epoch from retry_at - now()) as delay "
                                   "from stage1_jobs where job_id = %s", (job.job_id,)).fetchone()
            assert row["status"] == "PENDING" and row["attempts"] == attempt
            delays.append(float(row["delay"]))
            # Not dispatched again before its backoff is over, however stale.
            assert job.job_id not in [j.job_id for j in stale_pending("import_outage_probe", 0)]
        assert delays == sorted(delays) and 8 < delays[0] < 11 and 38 < delays[-1] < 41
        with db.connection() as conn:
            conn.execute("update stage1_jobs set retry_at = now() - interval '1 second' where job_id = %s",
                         (job.job_id,))
        assert job.job_id in [j.job_id for j in stale_pending("import_outage_probe", 3_600)]
        # Past the deadline since the outage began: FAILED, saying so.
        assert jobs.claim(job.job_id, "w") is not None
        with db.connection() as conn:
            conn.execute("update stage1_jobs set outage_since = now() - interval '11 minutes' where job_id = %s",
                         (job.job_id,))
        assert jobs.release(job.job_id, "w", "questdb unavailable: refused", deadline_seconds=600)
        done = jobs.find_job(job.job_id)
        assert done.status == "FAILED" and "gave up" in done.error and done.completed_at is not None
    finally:
        with db.connection() as conn:
            conn.execute("delete from stage1_jobs where job_id = %s", (job.job_id,))


class _CutProxy:
    """A TCP proxy in front of QuestDB that one importer process is pointed at: after `cut_after`
    bytes towards QuestDB it drops every connection and refuses new ones — QuestDB "killed"
    mid-import for that process only, the shared QuestDB untouched."""

    def __init__(self, target: tuple[str, int], cut_after: int) -> None:
        import socket
        import threading

        self.target, self.cut_after, self.sent, self.open = target, cut_after, 0, True
        self._conns: list = []
        self._lock = threading.Lock()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src, dst, towards_questdb: bool) -> None:
        try:
            while self.open and (data := src.recv(1 << 16)):
                dst.sendall(data)
                if towards_questdb:
                    with self._lock:
                        self.sent += len(data)
                    if self.sent > self.cut_after:
                        self.cut()
        except OSError:
            pass

    def cut(self) -> None:
        import socket

        self.open = False
        with self._lock:
            for s in self._conns:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()

    def close(self) -> None:
        self.cut()
        self.server.close()


def test_questdb_lost_mid_import_leaves_no_partial_rows_and_the_job_retries_to_completion(client, settings, unique):
    """Hole 9 without touching the shared QuestDB: the importer process talks to QuestDB through a
    proxy that drops dead after ~4 MB of rows. Before: the rows sent so far were in the dataset's
    table (served by /ohlcv while the dataset said 0) and two quick attempts FAILED the job. Now:
    the job is released PENDING with a backoff, nothing of it is visible, and once QuestDB answers
    again (the sweeper retries it on the real one) it completes with the exact count."""
    import uuid as _uuid
    from urllib.parse import urlsplit

    ds = _dataset(client, unique)
    slug, target = ds["dataset_slug"], ds["ohlcv_measurement"]
    key = f"h3-outage/{_uuid.uuid4()}/data.csv"  # not an upload's key: its event is ignored
    qdb = urlsplit(settings.questdb.qdb_http_url)
    proxy = _CutProxy((qdb.hostname, qdb.port or 9000), cut_after=4 << 20)
    try:
        assert wait_job(client, _dataset_upload(client, slug, ohlcv_csv(1_000))["job_id"])["status"] == "COMPLETED"
        storage.get_s3().put_object(Bucket=settings.store.bucket, Key=key,
                                    Body=ohlcv_csv(300_000, start=T0 + 60 * 2_000))
        payload = {"bucket": settings.store.bucket, "key": key, "kind": "ohlcv", "measurement": target, "format": "csv",
                   "dataset_id": ds["dataset_id"], "granularity": "1m", "ready": True}
        with db.connection() as conn:
            job_id = jobs.create_job(conn, "import", payload, idempotency_key=f"s3://{settings.store.bucket}/{key}").job_id
        env = {**os.environ, "STAGE1_QDB_HTTP_URL": f"http://127.0.0.1:{proxy.port}"}
        code = ("import json, sys; from stage1.imports.service import run_job; "
                "print(json.dumps(run_job(sys.argv[1], 'outage-test')))")
        out = subprocess.run([sys.executable, "-c", code, job_id], env=env, capture_output=True, text=True,
                             timeout=120)
        outcome = json.loads(out.stdout.strip().splitlines()[-1])
        assert proxy.sent > 4 << 20 and outcome["status"] == "PENDING" and outcome["service"] == "questdb", outcome
        # Nothing of the interrupted import is visible (checked at once: its retry is >= 1 s away).
        assert count(target) == 1_000
        assert client.get(f"/api/datasets/{slug}").json()["ohlcv_rows"] == 1_000
        assert client.get(f"/api/datasets/{slug}/ohlcv", params={"limit": 1}).json()["total"] == 1_000
        with db.connection() as conn:
            row = conn.execute("select status, error, retry_at > now() - interval '1 minute' as backoff "
                               "from stage1_jobs where job_id = %s", (job_id,)).fetchone()
        assert row["status"] in ("PENDING", "RUNNING"), row  # RUNNING: a sweeper already retries it
        assert row["status"] == "RUNNING" or (row["backoff"] and "questdb unavailable" in row["error"]), row
        # QuestDB "is back" (the sweeper dispatches the job to a gateway that reaches it).
        job = wait_job(client, job_id, timeout=120)
        assert job["status"] == "COMPLETED", job
        assert job["attempts"] >= 2
        assert count(target) == 301_000
        assert client.get(f"/api/datasets/{slug}").json()["ohlcv_rows"] == 301_000
        assert _staging_tables(target) == []
    finally:
        proxy.close()
        storage.get_s3().delete_object(Bucket=settings.store.bucket, Key=key)
        client.delete(f"/api/datasets/{slug}?cascade=true")
        drop(target)


def test_rows_that_do_not_fit_the_existing_table_fail_the_import_and_leave_it_as_it_was(client, table):
    """The copy from staging is where a file's column types meet the table's: text into a DOUBLE
    column is a 400 naming the column's types (before: rows of other batches were already in)."""
    r = client.post(f"/api/questdb/import?measurement={table}&kind=raw", content=b"timestamp,note\n1700000000,1.5\n",
                    headers={"content-type": "text/csv"})
    assert r.status_code == 200, r.text
    r = client.post(f"/api/questdb/import?measurement={table}&kind=raw",
                    content=b"timestamp,note\n1700000060,abc\n1700000120,def\n", headers={"content-type": "text/csv"})
    assert r.status_code == 400, r.text
    assert "do not fit" in r.json()["error"] and r.json()["details"]["column_types"]["note"] == ["VARCHAR", "DOUBLE"]
    assert count(table) == 1 and _staging_tables(table) == []


def test_a_plain_import_into_a_datasets_table_is_refused_naming_the_owner(client, unique):
    """Ownership is decided once, in the registry: the dataset owns its OHLCV table, so a plain
    measurement import into it is refused (before: it wrote there, and could drop it on failure)."""
    ds = _dataset(client, unique)
    slug, target = ds["dataset_slug"], ds["ohlcv_measurement"]
    try:
        assert wait_job(client, _dataset_upload(client, slug, ohlcv_csv(100))["job_id"])["status"] == "COMPLETED"
        r = client.post(f"/api/questdb/import?measurement={target}&kind=ohlcv", content=ohlcv_csv(50, start=T0 - 6_000),
                        headers={"content-type": "text/csv"})
        assert r.status_code == 400, r.text
        assert f"belongs to dataset {ds['dataset_id']}" in r.json()["error"]
        assert r.json()["details"]["owner_kind"] == "dataset"
        assert count(target) == 100 and _staging_tables(target) == []
    finally:
        client.delete(f"/api/datasets/{slug}?cascade=true")
        drop(target)


def test_the_sweeper_drops_staging_tables_of_finished_jobs_only(unique):
    """A worker that died (or could not reach QuestDB when it failed) leaves its staging table:
    the sweeper drops it once the job is finished, and leaves a running job's alone."""
    from stage1.jobs.sweeper import drop_orphan_staging
    from stage1.timeseries import ownership as own
    from stage1.timeseries.kinds import Kind, ensure_table

    names = {}
    with db.connection() as conn:
        for status in ("FAILED", "RUNNING"):
            job = jobs.create_job(conn, "import_staging_probe", {})
            conn.execute("update stage1_jobs set status = %s where job_id = %s", (status, job.job_id))
            names[status] = (f"zz_stg_{unique}_{status.lower()}__s{job.job_id[:8]}", job.job_id)
            own.claim(conn, names[status][0], own.Owner("job", job.job_id), "staging", exists=False)
            conn.execute("update stage1_questdb_tables set created_at = now() - interval '2 minutes' "
                         "where table_name = %s", (names[status][0],))
    try:
        for name, _ in names.values():
            ensure_table(Kind.OHLCV, name)
        drop_orphan_staging(limit=1_000)
        assert not get_questdb().table_exists(names["FAILED"][0])
        assert get_questdb().table_exists(names["RUNNING"][0])
        with db.connection() as conn:
            assert own.owner_of(conn, names["FAILED"][0]) is None
            assert own.owner_of(conn, names["RUNNING"][0]) is not None
    finally:
        with db.connection() as conn:
            for name, job_id in names.values():
                own.release(conn, own.Owner("job", job_id))
                conn.execute("delete from stage1_jobs where job_id = %s", (job_id,))
        for name, _ in names.values():
            drop(name)
