"""Helpers of the upload-limit tests (test_upload_limits.py, test_hostile_uploads.py): declarations made
through the API, and their tidy removal (job cancelled, multipart upload aborted, object deleted) so the
shared bucket and jobs table keep nothing of them."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import httpx

from stage1.core import db, storage
from stage1.core.settings import get_settings


def measurement() -> str:
    return f"zz_ul_{uuid.uuid4().hex[:12]}"


def declare(client: httpx.Client, size: int, **fields: Any) -> dict[str, Any]:
    body = {"filename": "bars.csv", "size": size, "kind": "ohlcv", "measurement": measurement(),
            "content_type": "text/csv", **fields}
    r = client.post("/api/uploads", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def upload_row(upload_id: str) -> dict[str, Any]:
    with db.connection() as conn:
        return conn.execute("select * from stage1_uploads where upload_id = %s", (upload_id,)).fetchone()


def multipart_id(upload_id: str) -> str | None:
    return upload_row(upload_id)["multipart_upload_id"]


def head(key: str) -> int | None:
    from botocore.exceptions import ClientError

    try:
        return int(storage.get_s3().head_object(Bucket=get_settings().store.bucket, Key=key)["ContentLength"])
    except ClientError:
        return None


def discard(client: httpx.Client, up: dict[str, Any]) -> None:
    """Cancel the declaration's job and remove whatever it left in the bucket."""
    client.post(f"/api/jobs/{up['job_id']}/cancel")
    s3, bucket = storage.get_s3(), get_settings().store.bucket
    mp_id = multipart_id(up["upload_id"])
    with contextlib.suppress(Exception):
        if mp_id:
            s3.abort_multipart_upload(Bucket=bucket, Key=up["object_key"], UploadId=mp_id)
        s3.delete_object(Bucket=bucket, Key=up["object_key"])
