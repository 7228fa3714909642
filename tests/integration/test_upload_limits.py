"""Hole 8 of issue 11: an upload declaration bounds what the presigned URLs accept, against the real
MinIO through the gateway. Before the fix a 50 GiB declaration got 3,200 part URLs that each took any
length (up to S3's 5 GiB), the POST policy took 1..size bytes, and a complete accepted an object
smaller than declared (or any parts list S3 agreed to)."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from imports_support import ohlcv_csv, wait_job
from upload_support import declare, discard, head, multipart_id, upload_row

from stage1.core import storage
from stage1.core.questdb import get_questdb


@pytest.fixture
def declared(client):
    made: list[dict] = []
    yield made
    for up in made:
        discard(client, up)


def _multipart(client, settings, declared) -> dict:
    up = declare(client, settings.uploads.multipart_threshold_bytes + 1024**2)
    declared.append(up)
    assert up["multipart"] and len(up["parts"]) >= 2
    return up


def test_a_50_gib_declaration_is_refused_naming_the_limit(client, settings):
    r = client.post("/api/uploads", json={"filename": "big.csv", "size": 50 * 1024**3, "kind": "ohlcv",
                                          "measurement": "zz_ul_fifty"})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["details"]["limit"] == "upload_max_bytes"
    assert body["details"]["max_bytes"] == settings.uploads.upload_max_bytes
    assert "STAGE1_UPLOAD_MAX_BYTES" in body["error"] and body["details"]["field"] == "size"


def test_the_largest_declaration_gets_at_most_max_parts_each_signed_for_its_length(client, settings, declared):
    started = time.monotonic()
    up = declare(client, settings.uploads.upload_max_bytes)
    seconds = time.monotonic() - started
    declared.append(up)
    parts = up["parts"]
    assert len(parts) <= settings.uploads.upload_max_parts and up["part_size"] >= 16 * 1024**2
    assert [p["part_number"] for p in parts] == list(range(1, len(parts) + 1))
    assert sum(p["size"] for p in parts) == settings.uploads.upload_max_bytes
    assert all(p["size"] == up["part_size"] for p in parts[:-1]) and 0 < parts[-1]["size"] <= up["part_size"]
    for p in (parts[0], parts[-1]):
        query = parse_qs(urlsplit(p["url"]).query)
        assert "content-length" in query["X-Amz-SignedHeaders"][0].split(";")
        assert int(query["X-Amz-Expires"][0]) == storage.url_seconds(settings.uploads.upload_url_expires_seconds)
    expires = datetime.fromisoformat(up["expires_at"].replace("Z", "+00:00"))
    lifetime = storage.url_seconds(settings.uploads.upload_url_expires_seconds)
    assert 0 < (expires - datetime.now(UTC)).total_seconds() <= lifetime
    print(f"\n{settings.uploads.upload_max_bytes} bytes declared: {len(parts)} parts of {up['part_size']} bytes in "
          f"{seconds:.2f} s, answer {len(json.dumps(up))} bytes")


def test_a_part_put_of_another_length_is_refused_by_the_store(client, settings, declared):
    up = _multipart(client, settings, declared)
    first, last = up["parts"][0], up["parts"][-1]
    with httpx.Client(timeout=120) as store:
        for n in (first["size"] - 1, first["size"] + 1, 5 * 1024**2):
            r = store.put(first["url"], content=b"x" * n)
            assert r.status_code == 403 and "SignatureDoesNotMatch" in r.text, (n, r.status_code, r.text[:200])
        chunked = store.put(first["url"], content=iter([b"x" * first["size"]]))  # no Content-Length
        assert chunked.status_code in (403, 411), chunked.text[:200]
        r = store.put(last["url"], content=b"x" * first["size"])  # a full part through the last part's URL
        assert r.status_code == 403, r.text[:200]
        assert store.put(first["url"], content=b"x" * first["size"]).status_code == 200
    stored = storage.get_s3().list_parts(Bucket=settings.store.bucket, Key=up["object_key"],
                                         UploadId=multipart_id(up["upload_id"]))["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in stored] == [(1, first["size"])]


def test_the_presigned_post_takes_exactly_the_declared_size(client, settings, declared):
    data = ohlcv_csv(20)
    up = declare(client, len(data), measurement=f"zz_ul_post_{int(time.time() * 1000)}")
    declared.append(up)
    policy = json.loads(base64.b64decode(up["fields"]["policy"]))
    assert ["content-length-range", len(data), len(data)] in policy["conditions"]
    lifetime = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00")) - datetime.now(UTC)
    assert 0 < lifetime.total_seconds() <= storage.url_seconds(settings.uploads.upload_url_expires_seconds)
    with httpx.Client(timeout=60) as store:
        small = store.post(up["url"], data=up["fields"], files={"file": ("b.csv", data[:-1])})
        assert small.status_code == 400 and "EntityTooSmall" in small.text, small.text[:200]
        large = store.post(up["url"], data=up["fields"], files={"file": ("b.csv", data + b"\n")})
        assert large.status_code == 400 and "EntityTooLarge" in large.text, large.text[:200]
        assert store.post(up["url"], data=up["fields"], files={"file": ("b.csv", data)}).status_code == 204
    try:
        assert wait_job(client, up["job_id"], timeout=60)["status"] == "COMPLETED"
    finally:
        get_questdb().exec(f"drop table if exists {up['measurement']}")


def test_a_complete_with_parts_other_than_those_handed_out_is_a_400(client, settings, declared):
    up = _multipart(client, settings, declared)
    n = len(up["parts"])

    def parts(numbers):
        return {"parts": [{"part_number": k, "etag": '"e"'} for k in numbers]}

    for body in (parts(range(1, n + 2)), parts(range(2, n + 1)), parts([1, 1, *range(2, n + 1)]), parts([1])):
        r = client.post(up["complete_url"], json=body)
        assert r.status_code == 400 and r.json()["details"]["parts"] == n, r.text
    r = client.post(up["complete_url"], json={})  # nothing uploaded: the store's list is incomplete
    assert r.status_code == 409 and r.json()["details"]["missing"] == list(range(1, n + 1))[:20], r.text
    assert upload_row(up["upload_id"])["status"] == "CREATED" and multipart_id(up["upload_id"])


def test_a_stored_part_of_another_length_aborts_the_upload_and_fails_the_job(client, settings, declared):
    """A part that is not the length handed out (written here with the service's own keys, as a store
    that ignored the signed length would take it) is caught at complete: the multipart upload is
    aborted, the upload REJECTED, the job FAILED, nothing imported. Before: S3 completed the smaller
    object and it was imported."""
    up = _multipart(client, settings, declared)
    s3, mp_id = storage.get_s3(), multipart_id(up["upload_id"])
    etags = []
    with httpx.Client(timeout=120) as store:
        for p in up["parts"][1:]:
            r = store.put(p["url"], content=b"x" * p["size"])
            assert r.status_code == 200, r.text[:200]
            etags.append({"part_number": p["part_number"], "etag": r.headers["etag"]})
    short = s3.upload_part(Bucket=settings.store.bucket, Key=up["object_key"], UploadId=mp_id, PartNumber=1,
                           Body=b"x" * (up["parts"][0]["size"] - 1024**2))
    etags.insert(0, {"part_number": 1, "etag": short["ETag"]})
    r = client.post(up["complete_url"], json={"parts": etags})
    assert r.status_code == 400, r.text
    assert "part 1 is" in r.json()["error"] and r.json()["details"]["status"] == "REJECTED"
    job = client.get(f"/api/jobs/{up['job_id']}").json()
    assert job["status"] == "FAILED" and "upload rejected" in job["error"]
    assert upload_row(up["upload_id"])["status"] == "REJECTED" and head(up["object_key"]) is None
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError):  # aborted: its parts are gone from the bucket
        s3.list_parts(Bucket=settings.store.bucket, Key=up["object_key"], UploadId=mp_id)
    again = client.post(up["complete_url"], json={"parts": etags})  # completing twice: the same answer
    assert again.status_code == 400 and again.json()["details"]["status"] == "REJECTED"
    assert again.json()["error"] == job["error"]


def test_an_object_of_another_size_is_rejected_on_complete(client, settings, declared):
    """A single object shorter than its declaration (written with the service's keys: the policy would
    refuse it) is deleted at complete and its job FAILED; before, only a larger object was refused."""
    data = b"no,columns,here\n" * 64
    up = declare(client, len(data) + 100)
    declared.append(up)
    storage.get_s3().put_object(Bucket=settings.store.bucket, Key=up["object_key"], Body=data)
    r = client.post(up["complete_url"])
    assert r.status_code == 400, r.text
    assert r.json()["details"]["declared"] == len(data) + 100 and r.json()["details"]["status"] == "REJECTED"
    assert head(up["object_key"]) is None
    job = wait_job(client, up["job_id"], timeout=30)
    assert job["status"] == "FAILED"
    assert client.post(up["complete_url"]).status_code == 400  # completing again: still rejected


def test_an_object_of_another_size_is_never_imported_from_its_event(client, settings, declared):
    """The storage event's path: the importer compares the object with the declaration before it
    claims the job. (MinIO's webhook goes to the :3000 gateway: it must run this code.)"""
    data = ohlcv_csv(50)
    up = declare(client, len(data) + 1)
    declared.append(up)
    storage.get_s3().put_object(Bucket=settings.store.bucket, Key=up["object_key"], Body=data)
    try:
        job = wait_job(client, up["job_id"], timeout=60)
        assert job["status"] == "FAILED" and "upload rejected" in job["error"], job
        assert head(up["object_key"]) is None and upload_row(up["upload_id"])["status"] == "REJECTED"
        assert not get_questdb().table_exists(up["measurement"])
    finally:
        get_questdb().exec(f"drop table if exists {up['measurement']}")


def test_a_multipart_upload_never_completed_is_aborted_when_the_sweeper_fails_it(client, settings, declared):
    """The sweeper's check of a PENDING upload whose URLs expired over an hour ago (set back here):
    the job is FAILED and the multipart upload aborted, so its parts do not stay in the bucket.
    Before, the parts stayed until a bucket lifecycle rule (AWS only) removed them."""
    from stage1.core import db
    from stage1.jobs import service as jobs
    from stage1.uploads.service import ready_for_import

    up = _multipart(client, settings, declared)
    first = up["parts"][0]
    with httpx.Client(timeout=120) as store:
        assert store.put(first["url"], content=b"x" * first["size"]).status_code == 200
    mp_id = multipart_id(up["upload_id"])
    with db.connection() as conn:
        jobs.update_payload(conn, up["job_id"], {"expires_at": "2000-01-01T00:00:00Z"})
    assert ready_for_import(jobs.get_job(up["job_id"])) is False
    job = client.get(f"/api/jobs/{up['job_id']}").json()
    assert job["status"] == "FAILED" and "never uploaded" in job["error"]
    assert multipart_id(up["upload_id"]) is None
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError):
        storage.get_s3().list_parts(Bucket=settings.store.bucket, Key=up["object_key"], UploadId=mp_id)
