"""Path traversal through upload filenames: a filename is a base name (a path, `.`/`..` or a control
character is a 400 before anything is created), and the object key is the server's own
(`uploads/<upload_id>/data.<ext>`) whatever the client calls its file; the presigned POST cannot be
redirected to another key."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from stage1_local.template import routes

TRAVERSALS = [
    "../../etc/passwd.csv",
    "..\\..\\windows\\system32\\x.csv",
    "/etc/passwd.csv",
    "uploads/../../exports/x.csv",
    "....//....//x.csv",
    "a/b/../../../c.csv",
    "C:\\temp\\x.csv",
]
# Odd but harmless names: accepted, and still only a name.
ODD_NAMES = [
    "%2e%2e%2f%2e%2e%2fx.csv",
    "~.ssh.id_rsa.csv",
    "..x.csv",
    "donn\u00e9es.csv",
]
KEY = re.compile(r"^uploads/[0-9a-f-]{36}/data\.csv$")

pytestmark = pytest.mark.skipif(not any(r.path == "/api/uploads" for r in routes()),
                                reason="no /api/uploads route in template.yaml")


def _measurement() -> str:
    return f"trav_{uuid.uuid4().hex[:10]}"


@pytest.mark.parametrize("filename", TRAVERSALS)
def test_a_path_in_the_filename_is_a_400(client, filename):
    r = client.post("/api/uploads", json={"filename": filename, "size": 100, "kind": "raw",
                                          "measurement": _measurement(), "content_type": "text/csv"})
    assert r.status_code == 400, r.text
    assert r.json()["details"]["field"] == "filename" and "base name" in r.json()["error"]


@pytest.mark.parametrize("filename", ODD_NAMES)
def test_the_object_key_ignores_the_client_filename(client, settings, filename):
    r = client.post("/api/uploads", json={"filename": filename, "size": 100, "kind": "raw",
                                          "measurement": _measurement(), "content_type": "text/csv"})
    assert r.status_code in (200, 201), r.text
    body = r.json()
    assert KEY.fullmatch(body["object_key"]), body["object_key"]
    assert body["object_key"] == f"uploads/{body['upload_id']}/data.csv"
    if body.get("fields"):
        assert body["fields"]["key"] == body["object_key"]
    assert ".." not in httpx.URL(body["url"]).path and "passwd" not in body["url"]
    client.post(f"/api/jobs/{body['job_id']}/cancel")


@pytest.mark.parametrize("filename", ["x\x00.csv", "", "a" * 256 + ".csv", "x.csv\r\nX-Amz-Meta-Evil: 1", "..",
                                      "x\u202e.csv"])
def test_unusable_filenames_are_a_400(client, filename):
    r = client.post("/api/uploads", json={"filename": filename, "size": 100, "kind": "raw",
                                          "measurement": _measurement()})
    assert r.status_code == 400, r.text


def test_a_presigned_post_cannot_be_pointed_at_another_key(client):
    r = client.post("/api/uploads", json={"filename": "evil.csv", "size": 100, "kind": "raw",
                                          "measurement": _measurement(), "content_type": "text/csv"})
    assert r.status_code in (200, 201), r.text
    body = r.json()
    if not body.get("fields"):
        pytest.skip("this upload is multipart (per-part URLs are signed for their key)")
    fields = {**body["fields"], "key": "uploads/../exports/evil.csv"}
    up = httpx.post(body["url"], data=fields, files={"file": ("evil.csv", b"timestamp,x\n1,2\n", "text/csv")})
    assert up.status_code == 403, up.text  # the signed policy pins the key


def test_dataset_uploads_ignore_the_filename_too(client):
    if not any(r.path == "/api/datasets/{dataset_id}/uploads" for r in routes()):
        pytest.skip("no /api/datasets/{dataset_id}/uploads route")
    slug = f"trav_{uuid.uuid4().hex[:10]}"
    assert client.post("/api/datasets", json={"dataset_slug": slug}).status_code in (200, 201)
    try:
        r = client.post(f"/api/datasets/{slug}/uploads", json={"filename": "../../../x.csv", "size": 10})
        assert r.status_code == 400, r.text
        r = client.post(f"/api/datasets/{slug}/uploads", json={"filename": "%2e%2e%2fx.csv", "size": 10})
        assert r.status_code in (200, 201), r.text
        assert KEY.fullmatch(r.json()["object_key"])
        client.post(f"/api/jobs/{r.json()['job_id']}/cancel")
    finally:
        client.delete(f"/api/datasets/{slug}")
