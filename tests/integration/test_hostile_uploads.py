"""The hostile upload corpus (tests/hostile/uploads.txt) through the gateway, as a client sends it:
declarations to POST /api/uploads and /api/datasets/{ref}/uploads, completions of a multipart and a
single declaration. A refused case is a 4xx with the error envelope naming the field or limit (never
2xx, never 5xx) and creates nothing; an allowed case is a 201 whose object key is the server's own."""

from __future__ import annotations

import json
import re
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from upload_support import declare, discard, measurement, upload_row

sys.path.insert(0, str(Path(__file__).parents[1] / "hostile"))
from corpus import Case, load  # noqa: E402  (tests/hostile is data plus its loader, not a package)

CASES = load("uploads.txt")
KEY = re.compile(r"^uploads/[0-9a-f-]{36}/(data\.(csv|csv\.gz|parquet|arrow)|chunks/)$")
BASE = {"filename": "bars.csv", "size": 1000, "kind": "ohlcv", "content_type": "text/csv"}


def expand(text: str, parts: int, max_bytes: int) -> str:
    def bound(v: str) -> int:  # "<int>", "$N", "$N+1", "$N-1"
        m = re.fullmatch(r"(\d+)([+-]\d+)?", v.strip().replace("$N", str(parts)))
        assert m, f"bad $PARTS bound {v!r}"
        return int(m.group(1)) + int(m.group(2) or 0)

    text = re.sub(r"\$REPEAT\((.*?),(\d+)\)", lambda m: m.group(1) * int(m.group(2)), text)
    text = re.sub(r"\$ONES\((\d+)\)", lambda m: ",".join("1" * int(m.group(1))), text)
    text = re.sub(r"\$PARTS\(([^,]+),([^)]+)\)", lambda m: json.dumps(
        [{"part_number": n, "etag": '"e"'} for n in range(bound(m.group(1)), bound(m.group(2)) + 1)]), text)
    return text.replace("$MAX+1", str(max_bytes + 1)).replace("$N", str(parts))


def merged(base: dict[str, Any], text: str) -> bytes:
    fields = json.loads(text, strict=False)  # the corpus' decoded escapes put raw control characters in strings
    body = {**base, **fields}
    return json.dumps({k: v for k, v in body.items() if v != "$DROP"}).encode("utf-8", "surrogatepass")


@pytest.fixture(scope="module")
def targets(gateway_url, api_headers, settings):
    import httpx

    with httpx.Client(base_url=gateway_url, headers=api_headers, timeout=60) as c:
        slug = f"zz_hu_{uuid.uuid4().hex[:10]}"
        assert c.post("/api/datasets", json={"dataset_slug": slug}).status_code in (200, 201)
        multipart = declare(c, settings.uploads.multipart_threshold_bytes + 1024**2)
        single = declare(c, 1000)
        chunked = declare(c, 1000, chunks=[600, 400])
        yield {"slug": slug, "multipart": multipart, "single": single, "chunked": chunked}
        discard(c, multipart)
        discard(c, single)
        discard(c, chunked)
        c.delete(f"/api/datasets/{slug}?cascade=true")


def send(client, case: Case, targets: dict[str, Any], max_bytes: int):
    route, _, text = case.text.partition(" ")
    text = expand(text, len(targets["multipart"]["parts"]), max_bytes)
    headers = {"content-type": "application/json"}
    if route == "create":
        body = merged({**BASE, "measurement": measurement()}, text)
        return client.post("/api/uploads", content=body, headers=headers)
    if route == "raw":
        return client.post("/api/uploads", content=text.encode("utf-8", "surrogatepass"), headers=headers)
    if route == "dataset":
        body = merged({"filename": "bars.csv", "size": 1000}, text)
        return client.post(f"/api/datasets/{targets['slug']}/uploads", content=body, headers=headers)
    if route == "dataset-ref":
        return client.post(f"/api/datasets/{text}/uploads", json={"filename": "bars.csv", "size": 1000})
    if route in ("complete", "complete-single", "complete-chunked"):
        up = targets[{"complete": "multipart", "complete-single": "single", "complete-chunked": "chunked"}[route]]
        return client.post(up["complete_url"], content=text.encode("utf-8", "surrogatepass"), headers=headers)
    if route == "resume-single":
        return client.post(f"/api/uploads/{targets['single']['upload_id']}/resume")
    if route == "resume-ref":
        return client.post(f"/api/uploads/{text}/resume")
    if route == "status-ref":
        return client.get(f"/api/uploads/{text}")
    raise AssertionError(f"uploads.txt:{case.line}: unknown route {route!r}")


def check(case: Case, r) -> str | None:
    """What is wrong with the answer to one case, or None."""
    if r.status_code >= 500 or case.outcome == "allow" and r.status_code != 201:
        return f"{r.status_code} {r.text[:200]}"
    if case.outcome == "allow":
        up = r.json()
        ok = KEY.fullmatch(up["object_key"]) and up["object_key"].startswith(f"uploads/{up['upload_id']}/")
        return None if ok else f"object key {up['object_key']!r} is not the server's"
    status, reason = 400, case.reason or ""
    if re.match(r"^\d{3}:", reason):
        status, reason = int(reason[:3]), reason[4:]
    if r.status_code != status:
        return f"{r.status_code} (expected {status}) {r.text[:200]}"
    body = r.json()
    if set(body) != {"error", "details"} or not body["error"]:
        return f"not the error envelope: {body}"
    if reason.lower() not in json.dumps(body, ensure_ascii=False).lower():
        return f"{reason!r} not in {json.dumps(body, ensure_ascii=False)[:200]}"
    return None


def test_the_corpus_runs_every_case(client, targets, settings):
    wrong, counts = [], {"refuse": 0, "allow": 0}
    for case in CASES:
        r = send(client, case, targets, settings.uploads.upload_max_bytes)
        problem = check(case, r)
        if problem:
            wrong.append(f"uploads.txt:{case.line} {case.text[:80]!r}: {problem}")
        if r.status_code == 201:
            discard(client, r.json())
        counts[case.outcome] += 1
    assert not wrong, "\n".join(wrong)
    # Nothing a refused completion sent changed the declarations: still waiting for their bytes.
    for name in ("multipart", "single"):
        row = upload_row(targets[name]["upload_id"])
        assert row["status"] == "CREATED", (name, row["status"])
        assert client.get(f"/api/jobs/{targets[name]['job_id']}").json()["status"] == "PENDING"
    assert upload_row(targets["multipart"]["upload_id"])["multipart_upload_id"]
    print(f"\nhostile uploads corpus: {len(CASES)} cases ({counts['refuse']} refused, {counts['allow']} allowed)")


def test_a_refused_declaration_creates_nothing(client):
    """The declaration is checked before the job, the upload row or a multipart upload exist."""
    name = measurement()
    for bad in ({"size": 50 * 1024**3}, {"filename": "../../x.csv"}, {"content_type": "text/csv\u0000"},
                {"filename": "x\u0000.csv", "size": 1024**3}):
        r = client.post("/api/uploads", json={**BASE, "measurement": name, **bad})
        assert r.status_code == 400, (bad, r.text)
    from stage1.core import db

    with db.connection() as conn:
        jobs = conn.execute("select count(*) as n from stage1_jobs where payload->>'measurement' = %s",
                            (name,)).fetchone()["n"]
        uploads = conn.execute("select count(*) as n from stage1_uploads where measurement = %s", (name,)).fetchone()
    assert jobs == 0 and uploads["n"] == 0
