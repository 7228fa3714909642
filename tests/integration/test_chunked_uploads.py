"""Chunked uploads (issue 15; docs/imports.md "Chunked uploads") through the gateway, as a client
sends them: chunk objects PUT with their presigned URLs, each chunk's ObjectCreated event imports it
into the job's staging table, one job commits them all.

The chunk events are sent to the gateway under test (`/_local/s3-events`, with the webhook token, as
MinIO sends them) so that their order and repetition are the test's; MinIO's own events go to the
:3000 gateway too (harmless either way: a chunk is imported once, re-deliveries are skipped)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from stage1.core import storage
from stage1.core.questdb import get_questdb
from stage1.core.settings import get_settings

HEADER = b"timestamp_unix,open,high,low,close,volume\n"


def bars(rows: int, start: int = 0, bad_row: int | None = None) -> bytes:
    """1-minute OHLCV bars (deterministic values), as CSV rows without the header."""
    out = []
    for i in range(start, start + rows):
        o = 100 + (i * 7919 % 1000) / 100
        open_ = "x" * len(f"{o:.4f}") if i == bad_row else f"{o:.4f}"  # same length: a good copy can replace it
        out.append(f"{1_500_000_000 + 60 * i},{open_},{o + 1.5:.4f},{o - 1.25:.4f},{o + 0.5:.4f},{i % 977 * 1.5:.3f}\n")
    return "".join(out).encode()


def cut(rows: bytes, n: int) -> list[bytes]:
    """`n` chunks at row boundaries, each with the header."""
    lines = rows.splitlines(keepends=True)
    step = -(-len(lines) // n)
    return [HEADER + b"".join(lines[i:i + step]) for i in range(0, len(lines), step)]


def declare(client: httpx.Client, chunks: list[bytes], measurement: str, **extra: Any) -> dict[str, Any]:
    r = client.post("/api/uploads", json={"filename": "bars.csv", "size": sum(map(len, chunks)), "kind": "ohlcv",
                                          "measurement": measurement, "chunks": [len(c) for c in chunks], **extra})
    assert r.status_code == 201, r.text
    up = r.json()
    assert up["chunked"] and up["chunk_count"] == len(chunks) and len(up["chunks"]) == len(chunks)
    assert [c["index"] for c in up["chunks"]] == list(range(1, len(chunks) + 1))
    return up


def put(up: dict[str, Any], index: int, data: bytes) -> httpx.Response:
    chunk = up["chunks"][index - 1]
    return httpx.put(chunk["url"], content=data, headers={"Content-Length": str(len(data))}, timeout=60)


def event(client: httpx.Client, key: str) -> None:
    """The chunk's ObjectCreated event, as MinIO posts it to the gateway's webhook."""
    record = {"eventName": "s3:ObjectCreated:Put",
              "s3": {"bucket": {"name": get_settings().store.bucket}, "object": {"key": key}}}
    r = client.post("/_local/s3-events", json={"Records": [record]},
                    headers={"Authorization": f"Bearer {get_settings().auth.webhook_token}"})
    assert r.status_code == 200, r.text


def wait_job(client: httpx.Client, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
            return job
        assert time.monotonic() < deadline, f"job still {job['status']}: {job}"
        time.sleep(0.2)


def single(client: httpx.Client, data: bytes, measurement: str) -> None:
    """A one-object upload (presigned POST), imported through the same gateway (the nudge)."""
    one = client.post("/api/uploads", json={"filename": "bars.csv", "size": len(data), "kind": "ohlcv",
                                            "measurement": measurement}).json()
    assert httpx.post(one["url"], data=one["fields"], files={"file": ("bars.csv", data)}).status_code in (200, 204)
    client.post(one["complete_url"])
    assert wait_job(client, one["job_id"])["status"] == "COMPLETED"


def rows_of(table: str) -> list[list[Any]]:
    return get_questdb().exec(f"select timestamp, open, high, low, close, volume from {table} order by timestamp",
                              timeout=30).dataset


def drop(*tables: str) -> None:
    for t in tables:
        get_questdb().exec(f"drop table if exists {t}")


@pytest.fixture
def table():
    names: list[str] = []

    def make() -> str:
        names.append(f"zz_chunk_{uuid.uuid4().hex[:10]}")
        return names[-1]

    yield make
    drop(*names)


def test_chunks_out_of_order_and_twice_give_the_rows_of_one_object(client, table):
    rows = bars(40_000)
    chunks = cut(rows, 5)
    chunked_table, single_table = table(), table()
    up = declare(client, chunks, chunked_table)
    for i, data in enumerate(chunks, start=1):
        assert put(up, i, data).status_code == 200
    keys = [c["object_key"] for c in up["chunks"]]
    for i in (3, 1, 5, 2, 4, 3, 1, 5, 2, 4):  # out of order, each twice
        event(client, keys[i - 1])
    job = wait_job(client, up["job_id"])
    assert job["status"] == "COMPLETED", job
    assert job["progress"] == job["result"]["rows"] == 40_000 and job["total"] == 40_000
    assert job["result"]["chunks"] == 5

    single(client, HEADER + rows, single_table)  # the same file as one object
    assert rows_of(chunked_table) == rows_of(single_table)
    assert len(rows_of(chunked_table)) == 40_000

    status = client.get(f"/api/uploads/{up['upload_id']}").json()
    assert status["chunked"] and status["job_status"] == "COMPLETED" and status["missing"] == []
    assert status["chunks_imported"] == 5 and status["rows"] == 40_000
    assert all(c["state"] == "IMPORTED" and c["rows"] > 0 for c in status["chunks"])
    # The staging table went with the commit; a late re-delivery changes nothing.
    assert not get_questdb().table_exists(f"{chunked_table}__s{up['job_id'].replace('-', '')[:8]}")
    event(client, keys[0])
    assert client.get(f"/api/jobs/{up['job_id']}").json()["status"] == "COMPLETED"
    assert len(rows_of(chunked_table)) == 40_000


def _failing_after(n: int) -> httpx.Client:
    """An object-store client whose PUTs fail after the first `n` (a client killed half-way)."""
    real = httpx.HTTPTransport()
    seen = [0]

    class Transport(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "PUT":
                seen[0] += 1
                if seen[0] > n:
                    raise httpx.ConnectError("killed", request=request)
            return real.handle_request(request)

    return httpx.Client(transport=Transport(), timeout=60)


def test_resume_sends_only_the_missing_chunks_and_the_table_is_exact(gateway_url, api_token, table, tmp_path,
                                                                     monkeypatch):
    from stage1_client import Client
    from stage1_client.errors import ApiError

    monkeypatch.setenv("STAGE1_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "bars.csv"
    path.write_bytes(HEADER + bars(30_000))
    target = table()
    chunk_bytes = path.stat().st_size // 5 + 1  # 5 chunks
    args = {"kind": "ohlcv", "measurement": target, "chunk_bytes": chunk_bytes, "chunk_threshold": 0}

    first = Client(gateway_url, api_token)
    first._store = _failing_after(2)  # noqa: SLF001 - the transfer dies after two chunks
    with pytest.raises(ApiError):
        first.uploads.upload(path, concurrency=1, **args)
    first.close()
    states = list((tmp_path / "cache" / "uploads").glob("*.json"))
    assert len(states) == 1 and states[0].stat().st_mode & 0o777 == 0o600
    import json

    upload_id = json.loads(states[0].read_text())["upload_id"]

    second = Client(gateway_url, api_token)  # a new client, as a new process would be
    # resume lists the bucket (the two chunks' events may still be on their way) and says what is
    # missing; the status GET only reads, and agrees once resume has recorded the arrivals.
    status = second.uploads.resume(upload_id)
    assert status.chunk_count == 5 and status.missing == [3, 4, 5], status
    assert [u.index for u in status.urls or []] == [3, 4, 5]
    assert second.uploads.status(upload_id).missing == [3, 4, 5]
    upload = second.uploads.upload(path, **args)
    assert upload.resumed and upload.upload_id == upload_id and upload.sent_chunks == 3
    job = second.uploads.wait(upload, timeout=60, use_events=False)
    assert job.status == "COMPLETED", job
    assert job.progress == 30_000 and len(rows_of(target)) == 30_000
    assert not states[0].exists()  # nothing left to resume
    second.close()


def test_cli_resumes_an_interrupted_upload(gateway_url, api_token, table, tmp_path):
    """`stage1 upload` in a new process picks up what an interrupted run left (its state file)."""
    import os
    import subprocess
    import sys

    from stage1_client import Client
    from stage1_client.errors import ApiError

    slug = f"zz_chunk_ds_{uuid.uuid4().hex[:8]}"
    cache = tmp_path / "cache"
    env = {**os.environ, "STAGE1_CACHE_DIR": str(cache), "STAGE1_URL": gateway_url, "STAGE1_TOKEN": api_token}
    path = tmp_path / "bars.csv"
    path.write_bytes(HEADER + bars(20_000))
    mb = 0.25  # ~4 chunks of 256 KiB
    with Client(gateway_url, api_token) as c:
        c.http.post("/api/datasets", json={"dataset_slug": slug, "granularity": "1m"}).raise_for_status()
        c._store = _failing_after(1)  # noqa: SLF001
        with pytest.raises(ApiError):
            c.uploads.upload(path, kind="ohlcv", dataset=slug, concurrency=1, chunk_bytes=int(mb * 1024**2),
                             chunk_threshold=int(mb * 1024**2), state_dir=cache / "uploads")
    try:
        run = subprocess.run([sys.executable, "-m", "stage1_client.cli", "upload", str(path), "--dataset", slug,
                              "--kind", "ohlcv", "--chunk-mb", str(mb), "--wait", "60", "--no-events"],
                             env=env, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-2000:]
        assert "resumed" in run.stderr and "COMPLETED" in run.stderr, run.stderr[-2000:]
        with Client(gateway_url, api_token) as c:
            ds = c.http.get(f"/api/datasets/{slug}").json()
        assert ds["ohlcv_rows"] == 20_000, ds
    finally:
        with Client(gateway_url, api_token) as c:
            c.http.delete(f"/api/datasets/{slug}?cascade=true&drop_questdb=true")


def test_a_bad_chunk_fails_the_job_naming_it_and_the_target_is_untouched(client, table):
    target = table()
    single(client, HEADER + bars(100, start=50_000), target)  # rows already in the target
    before = rows_of(target)
    assert len(before) == 100
    chunks = cut(bars(9_000, bad_row=4_500), 3)  # the bad value is in chunk 2
    up = declare(client, chunks, target)
    for i, data in enumerate(chunks, start=1):
        assert put(up, i, data).status_code == 200
    keys = [c["object_key"] for c in up["chunks"]]
    event(client, keys[0])
    event(client, keys[1])
    job = wait_job(client, up["job_id"])
    assert job["status"] == "FAILED" and "chunk 2 of 3" in job["error"], job
    assert "open" in job["error"]  # pyarrow names the column
    event(client, keys[2])  # a later chunk of a failed upload is ignored
    status = client.get(f"/api/uploads/{up['upload_id']}").json()
    states = {c["index"]: c["state"] for c in status["chunks"]}
    assert states[2] == "FAILED" and states[3] != "IMPORTED", status
    assert rows_of(target) == before
    # Dropped by the failing chunk, and again by any chunk still running when it sees the job FAILED
    # (its rows may have re-created the table over ILP after the first drop): gone within moments.
    staging = f"{target}__s{up['job_id'].replace('-', '')[:8]}"
    import time

    deadline = time.monotonic() + 10
    while get_questdb().table_exists(staging):
        assert time.monotonic() < deadline, f"{staging} still exists"
        time.sleep(0.2)

    # The chunk put right (same size) and the job retried: every chunk is imported again, once.
    good = cut(bars(9_000), 3)[1]
    assert len(good) == len(chunks[1])
    storage.get_s3().put_object(Bucket=get_settings().store.bucket, Key=keys[1], Body=good)
    assert client.post(f"/api/jobs/{up['job_id']}/retry").status_code == 200
    job = wait_job(client, up["job_id"])
    assert job["status"] == "COMPLETED" and job["result"]["rows"] == 9_000, job
    assert len(rows_of(target)) == 9_100


def test_stale_upload_expires_objects_staging_and_job(client, table):
    from datetime import UTC, datetime, timedelta

    from stage1.uploads import chunks as chunked

    target = table()
    chunks = cut(bars(4_000), 2)
    up = declare(client, chunks, target)
    assert put(up, 1, chunks[0]).status_code == 200
    event(client, up["chunks"][0]["object_key"])
    staging = f"{target}__s{up['job_id'].replace('-', '')[:8]}"
    import time

    deadline = time.monotonic() + 30
    while client.get(f"/api/uploads/{up['upload_id']}").json()["chunks_imported"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert client.get(f"/api/jobs/{up['job_id']}").json()["status"] == "RUNNING"
    assert get_questdb().table_exists(staging)
    from stage1.core import db

    with db.connection() as conn:  # its TTL (STAGE1_UPLOAD_CHUNKED_TTL_SECONDS) has run out
        conn.execute("update stage1_uploads set expires_at = %s where upload_id = %s",
                     (datetime.now(UTC) - timedelta(seconds=1), up["upload_id"]))
    chunked.sweep()  # the sweeper's pass (every gateway's sweeper loop may get there first: same outcome)
    job = wait_job(client, up["job_id"], timeout=15)
    assert job["status"] == "FAILED" and "upload expired: 1 of 2 chunks" in job["error"], job
    s3 = storage.get_s3()
    listed = s3.list_objects_v2(Bucket=get_settings().store.bucket, Prefix=f"uploads/{up['upload_id']}/")
    assert listed.get("KeyCount", 0) == 0
    assert not get_questdb().table_exists(staging)
    assert not get_questdb().table_exists(target)  # nothing was committed
    r = client.post(f"/api/uploads/{up['upload_id']}/resume")
    assert r.status_code == 409 and "FAILED" in r.json()["error"]


def test_hostile_chunk_objects_and_events(client, table):
    """A PUT of another length than signed, an object put past the URL with another size, events for
    keys no upload has, and a chunk event for a completed upload: 4xx at the store, a FAILED job
    naming the chunk, or ignored, never imported or a 5xx."""
    target = table()
    chunks = cut(bars(3_000), 2)
    up = declare(client, chunks, target)
    # The URL's Content-Length is signed: a longer (or shorter) body is refused by the store itself.
    longer = chunks[0] + b"1500000000,1,1,1,1,1\n"
    r = httpx.put(up["chunks"][0]["url"], content=longer, timeout=30)
    assert r.status_code in (400, 403), r.text
    # Keys no upload has, or past the declared chunk count: ignored.
    event(client, f"uploads/{uuid.uuid4()}/chunk-000001.csv")
    event(client, f"uploads/{up['upload_id']}/chunk-000009.csv")
    event(client, f"uploads/{up['upload_id']}/chunk-000001.parquet")
    assert client.get(f"/api/jobs/{up['job_id']}").json()["status"] == "PENDING"
    # An object written past the URL (another size than declared): the job fails naming the chunk.
    bucket = get_settings().store.bucket
    storage.get_s3().put_object(Bucket=bucket, Key=up["chunks"][1]["object_key"], Body=chunks[1][:-30])
    event(client, up["chunks"][1]["object_key"])
    job = wait_job(client, up["job_id"])
    assert job["status"] == "FAILED" and "chunk 2 is" in job["error"] and "declared" in job["error"], job
    assert client.get(f"/api/uploads/{up['upload_id']}").json()["status"] == "REJECTED"
    assert client.post(f"/api/uploads/{up['upload_id']}/resume").status_code in (400, 409)
    assert not get_questdb().table_exists(target)

    # A chunk event for a completed upload changes nothing.
    done = declare(client, [chunks[0]], table())
    assert put(done, 1, chunks[0]).status_code == 200
    event(client, done["chunks"][0]["object_key"])
    assert wait_job(client, done["job_id"])["status"] == "COMPLETED"
    before = rows_of(done["measurement"])
    event(client, done["chunks"][0]["object_key"])
    assert client.get(f"/api/jobs/{done['job_id']}").json()["status"] == "COMPLETED"
    assert rows_of(done["measurement"]) == before


def test_the_object_key_is_the_servers_and_sizes_are_signed(client, table):
    chunks = cut(bars(200), 2)
    up = declare(client, chunks, table())
    for c, data in zip(up["chunks"], chunks, strict=True):
        assert c["object_key"] == f"uploads/{up['upload_id']}/chunk-{c['index']:06d}.csv"
        assert c["size"] == len(data)
    assert up["status_url"] == f"/api/uploads/{up['upload_id']}"
    # Nothing uploaded yet (an event for a chunk that is not in the bucket changes nothing): everything
    # is missing; complete says so and does not fail.
    event(client, up["chunks"][1]["object_key"])
    import time

    time.sleep(0.5)
    assert client.get(up["status_url"]).json()["missing"] == [1, 2]
    r = client.post(up["complete_url"])
    assert r.status_code == 200 and r.json()["uploaded"] is False
    client.post(f"/api/jobs/{up['job_id']}/cancel")


def test_a_dead_chunk_invocation_is_taken_over_by_the_sweeper(client, table):
    """A chunk whose invocation died mid-import (its lease held, then expired): the chunk's later
    event is skipped while the lease holds; the sweeper's pass frees it and imports it again, and
    the job commits exactly the rows of the file."""
    from datetime import UTC, datetime, timedelta

    from stage1.core import db
    from stage1.uploads import chunks as chunked

    target = table()
    chunks = cut(bars(6_000), 2)
    up = declare(client, chunks, target)
    with db.connection() as conn:  # an invocation took chunk 1 and died
        conn.execute("update stage1_upload_chunks set state = 'IMPORTING', lease_owner = 'dead', attempts = 1, "
                     "lease_expires_at = now() + interval '1 hour' where upload_id = %s and index = 1",
                     (up["upload_id"],))
    for i, data in enumerate(chunks, start=1):
        assert put(up, i, data).status_code == 200
        event(client, up["chunks"][i - 1]["object_key"])
    import time

    deadline = time.monotonic() + 30
    while client.get(f"/api/uploads/{up['upload_id']}").json()["chunks_imported"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert client.get(f"/api/jobs/{up['job_id']}").json()["status"] == "RUNNING"  # waiting for chunk 1
    with db.connection() as conn:  # its lease ran out; nobody touched the job for a while
        conn.execute("update stage1_upload_chunks set lease_expires_at = %s where upload_id = %s and index = 1",
                     (datetime.now(UTC) - timedelta(seconds=1), up["upload_id"]))
        conn.execute("update stage1_jobs set updated_at = now() - interval '1 minute' where job_id = %s",
                     (up["job_id"],))
    chunked.sweep()  # (or any gateway's sweeper loop, a moment earlier)
    job = wait_job(client, up["job_id"])
    assert job["status"] == "COMPLETED" and job["result"]["rows"] == 6_000, job
    assert len(rows_of(target)) == 6_000
    status = client.get(f"/api/uploads/{up['upload_id']}").json()
    assert [c["attempts"] for c in status["chunks"]][0] == 2


def test_the_status_get_only_reads_and_complete_is_the_nudge(client, table, monkeypatch):
    """Polling `GET /api/uploads/{id}` (the web page does, every 1.5 s) lists no bucket and starts
    nothing; `complete` lists the bucket and records what arrived. In process, with the bucket LIST
    and the importer dispatch made to fail the GET: any use of either would be the GET's."""
    from stage1.jobs import dispatch
    from stage1.uploads import chunks as chunked
    from stage1.uploads import service

    chunks = cut(bars(2_000), 2)
    up = declare(client, chunks, table())
    assert put(up, 1, chunks[0]).status_code == 200

    def forbidden(*_: Any, **__: Any) -> Any:
        raise AssertionError("the status GET touched the bucket or dispatched an import")

    with monkeypatch.context() as m:
        m.setattr(chunked, "listed", forbidden)
        m.setattr(dispatch, "invoke_async", forbidden)
        for _ in range(3):
            status = service.upload_status(up["upload_id"])
            assert status.chunk_count == 2 and 2 in status.missing
    done = client.post(f"/api/uploads/{up['upload_id']}/complete").json()
    assert done["uploaded"] is False and "1 of 2 chunks not uploaded yet" in done["message"], done
    assert service.upload_status(up["upload_id"]).missing == [2]  # complete recorded chunk 1's arrival
