"""Resuming a multipart upload (docs/imports.md "Upload flow", resume) through the gateway, as a client
sends it: `POST /api/uploads/{id}/resume` lists the parts the store has (S3 ListParts) and hands out
fresh presigned PUTs, each signed for its exact length, for the missing ones only; `complete` without
parts then lets the server list the ETags. Before this, resume answered 400 for anything not chunked,
so a multipart upload could not outlive its URLs (STAGE1_UPLOAD_URL_EXPIRES_SECONDS)."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from imports_support import count, drop, ohlcv_csv, start_upload, wait_job
from upload_support import declare, discard, multipart_id, upload_row

from stage1.core import storage


@pytest.fixture
def table(unique):
    name = f"zz_mpr_{unique}"
    yield name
    drop(name)


def put(url: str, data: bytes) -> httpx.Response:
    return httpx.put(url, content=data, headers={"Content-Length": str(len(data))}, timeout=120)


def part_bytes(data: bytes, up: dict, number: int) -> bytes:
    start = (number - 1) * up["part_size"]
    return data[start:start + up["part_size"]]


def test_resume_hands_out_the_missing_parts_and_the_import_is_exact(client, table):
    n = 1_700_000
    data = ohlcv_csv(n)  # ~75 MB: 5 parts of the server's 16 MiB
    up = start_upload(client, "big.csv", len(data), table)
    assert up["multipart"] and len(up["parts"]) == 5, (up["part_size"], len(up["parts"]))
    for p in up["parts"][:3]:
        r = put(p["url"], part_bytes(data, up, p["part_number"]))
        assert r.status_code == 200, r.text[:300]

    # The GET reads Postgres alone: the part layout, but which parts the store has is resume's to list.
    got = client.get(f"/api/uploads/{up['upload_id']}")
    assert got.status_code == 200, got.text
    status = got.json()
    assert status["multipart"] and status["part_count"] == 5 and status["part_size"] == up["part_size"]
    assert status["parts_missing"] is None and status["parts"] is None and status["job_status"] == "PENDING"

    r = client.post(f"/api/uploads/{up['upload_id']}/resume")
    assert r.status_code == 200, r.text
    resumed = r.json()
    assert resumed["multipart"] and not resumed["chunked"] and resumed["part_count"] == 5
    assert resumed["parts_missing"] == [4, 5]
    assert [(p["part_number"], p["size"]) for p in resumed["parts"]] == [(p["part_number"], p["size"])
                                                                         for p in up["parts"][3:]]
    # Each fresh URL is signed for its exact length: one byte short is refused by the store itself.
    assert put(resumed["parts"][0]["url"], part_bytes(data, up, 4)[:-1]).status_code == 403
    for p in resumed["parts"]:
        r = put(p["url"], part_bytes(data, up, p["part_number"]))
        assert r.status_code == 200, r.text[:300]
    again = client.post(f"/api/uploads/{up['upload_id']}/resume").json()
    assert again["parts_missing"] == [] and again["parts"] == []

    done = client.post(up["complete_url"], json={})  # no ETags: the server lists the parts
    assert done.status_code == 200, done.text
    assert done.json()["uploaded"] is True and done.json()["size"] == len(data)
    job = wait_job(client, up["job_id"], timeout=180)
    assert job["status"] == "COMPLETED", job
    assert count(table) == n
    ended = client.post(f"/api/uploads/{up['upload_id']}/resume")
    assert ended.status_code == 409 and ended.json()["details"]["status"] == "COMPLETED", ended.text


def test_expired_part_urls_are_renewed_by_resume(client, settings):
    """The gateway under test must sign short URLs (STAGE1_UPLOAD_URL_EXPIRES_SECONDS=60, the floor;
    the test process reads the same setting): the test sleeps past the old URLs' expiry."""
    lifetime = storage.url_seconds(settings.uploads.upload_url_expires_seconds)
    if lifetime > 90:
        pytest.skip(f"presigned URLs live {lifetime} s here: run with STAGE1_UPLOAD_URL_EXPIRES_SECONDS=60 "
                    "(this test and its gateway) to wait past them")
    up = declare(client, settings.uploads.multipart_threshold_bytes + 1024**2)
    try:
        first, second = up["parts"][0], up["parts"][1]
        assert put(first["url"], b"x" * first["size"]).status_code == 200
        created_expiry = client.get(f"/api/uploads/{up['upload_id']}").json()["expires_at"]
        time.sleep(lifetime + 2)
        old = put(second["url"], b"x" * second["size"])
        assert old.status_code == 403, old.text[:300]  # the store's own check: the URL expired
        r = client.post(f"/api/uploads/{up['upload_id']}/resume")
        assert r.status_code == 200, r.text
        resumed = r.json()
        assert resumed["parts_missing"] == list(range(2, len(up["parts"]) + 1))
        assert resumed["expires_at"] > created_expiry  # the job's deadline moved with the new URLs
        assert client.get(f"/api/uploads/{up['upload_id']}").json()["expires_at"] == resumed["expires_at"]
        fresh = resumed["parts"][0]
        assert fresh["part_number"] == 2 and put(fresh["url"], b"x" * fresh["size"]).status_code == 200
    finally:
        discard(client, up)


def test_a_stored_part_of_another_length_found_by_resume_rejects_the_upload(client, settings):
    """A part of another length than handed out (written with the service's keys, as a store that
    ignored the signed length would take it): resume rejects the upload as complete would."""
    up = declare(client, settings.uploads.multipart_threshold_bytes + 1024**2)
    try:
        storage.get_s3().upload_part(Bucket=settings.store.bucket, Key=up["object_key"],
                                     UploadId=multipart_id(up["upload_id"]), PartNumber=1, Body=b"x" * 1024)
        r = client.post(f"/api/uploads/{up['upload_id']}/resume")
        assert r.status_code == 400 and r.json()["details"]["status"] == "REJECTED", r.text
        assert "part 1 is 1024 bytes" in r.json()["error"]
        assert upload_row(up["upload_id"])["status"] == "REJECTED" and not multipart_id(up["upload_id"])
        assert client.get(f"/api/jobs/{up['job_id']}").json()["status"] == "FAILED"
        assert client.post(f"/api/uploads/{up['upload_id']}/resume").status_code == 400  # and on every later call
    finally:
        discard(client, up)


def test_hostile_resume_calls_are_4xx(client, gateway_url, settings):
    """A single-object upload (400), an unknown, garbage or oversized id (404), another token's upload
    (404: a job is its creator's and the admins'), a cancelled job (409)."""
    single = declare(client, 1000)
    multi = declare(client, settings.uploads.multipart_threshold_bytes + 1024**2)
    try:
        r = client.post(f"/api/uploads/{single['upload_id']}/resume")
        assert r.status_code == 400 and "single object" in r.json()["error"], r.text
        for ref in (str(uuid.uuid4()), "not-a-uuid", "%00", "1" * 64, "../" + multi["upload_id"]):
            r = client.post(f"/api/uploads/{ref}/resume")
            assert 400 <= r.status_code < 500 and set(r.json()) == {"error", "details"}, (ref, r.text)
        body = {"name": f"pytest-mpr-{uuid.uuid4().hex[:8]}", "scopes": ["read", "write"], "expires_in": 600}
        minted = httpx.post(f"{gateway_url}/api/auth/token", json=body, timeout=30,
                            headers={"X-Stage1-Admin-Secret": settings.auth.admin_secret})
        if minted.status_code == 201:
            other = httpx.post(f"{gateway_url}/api/uploads/{multi['upload_id']}/resume", timeout=30,
                               headers={"X-Stage1-Token": minted.json()["token"]})
            assert other.status_code == 404, other.text
        assert client.post(f"/api/jobs/{multi['job_id']}/cancel").status_code in (200, 202)
        r = client.post(f"/api/uploads/{multi['upload_id']}/resume")
        assert r.status_code == 409 and r.json()["details"]["status"] == "CANCELLED", r.text
    finally:
        discard(client, single)
        discard(client, multi)


def _store(tamper_from: int | None = None, fail_after: int | None = None, puts: list[int] | None = None):
    """An object-store client for the Python client, to the real MinIO: with `tamper_from`, the first PUT
    of each part from that number on goes with a broken signature (the store answers 403, as for an
    expired URL); with `fail_after`, PUTs after the first n fail to connect (a client killed half-way).
    `puts` collects the part number of every PUT that reached the store."""
    from urllib.parse import parse_qs, urlsplit

    real = httpx.HTTPTransport()
    seen: set[int] = set()
    count = [0]

    class Transport(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "PUT":
                part = int(parse_qs(urlsplit(str(request.url)).query)["partNumber"][0])
                count[0] += 1
                if fail_after is not None and count[0] > fail_after:
                    raise httpx.ConnectError("killed", request=request)
                if tamper_from is not None and part >= tamper_from and part not in seen:
                    seen.add(part)
                    query = str(request.url.query, "ascii").replace("X-Amz-Signature=", "X-Amz-Signature=00")
                    request.url = request.url.copy_with(query=query.encode())
                if puts is not None:
                    puts.append(part)
            return real.handle_request(request)

    return httpx.Client(transport=Transport(), timeout=120)


def test_the_client_resumes_on_a_403_and_a_second_run_sends_only_the_missing_parts(gateway_url, api_token, unique,
                                                                                 tmp_path):
    from stage1_client import Client
    from stage1_client.errors import ApiError

    n = 1_700_000
    path = tmp_path / "big.csv"
    path.write_bytes(ohlcv_csv(n))
    state = tmp_path / "state"
    tables = [f"zz_mpr_{unique}_a", f"zz_mpr_{unique}_b"]
    try:
        # 1. Parts 4 and 5 are refused (403): the client asks resume for fresh URLs once and completes.
        with Client(gateway_url, api_token) as c:
            puts: list[int] = []
            c._store = _store(tamper_from=4, puts=puts)  # noqa: SLF001
            up = c.uploads.upload(path, kind="ohlcv", measurement=tables[0], state_dir=state)
            assert up.multipart and up.parts == 5 and not up.resumed
            assert sorted(puts) == [1, 2, 3, 4, 4, 5, 5]  # 4 and 5 again with the fresh URLs, nothing else
            assert c.uploads.wait(up, timeout=180, use_events=False).status == "COMPLETED"
        assert count(tables[0]) == n
        assert not list(state.glob("*.json"))  # completed: nothing left to resume

        # 2. A run killed after two parts leaves its state file; the next run sends parts 3..5 only.
        with Client(gateway_url, api_token) as c:
            c._store = _store(fail_after=2)  # noqa: SLF001
            with pytest.raises(ApiError):
                c.uploads.upload(path, kind="ohlcv", measurement=tables[1], state_dir=state, concurrency=1)
        assert len(list(state.glob("*.json"))) == 1
        with Client(gateway_url, api_token) as c:
            puts = []
            c._store = _store(puts=puts)  # noqa: SLF001
            up = c.uploads.upload(path, kind="ohlcv", measurement=tables[1], state_dir=state)
            assert up.resumed and up.multipart and sorted(puts) == [3, 4, 5]
            assert upload_row(up.upload_id)["status"] == "UPLOADED"
            assert c.uploads.wait(up, timeout=180, use_events=False).status == "COMPLETED"
        assert count(tables[1]) == n
        assert not list(state.glob("*.json"))
    finally:
        for name in tables:
            drop(name)
