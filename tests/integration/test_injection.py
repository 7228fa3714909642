"""SQL injection through every filter, name and id parameter the merged OpenAPI spec declares (so
new routes are covered as they appear), and through the name fields of request bodies. Each
payload must be refused (400/404) or match nothing; no 5xx; no delay from an injected sleep; and
the records that exist before are still there after."""

from __future__ import annotations

import time
import uuid

import pytest

from stage1_local.openapi import merged_spec

PAYLOADS = [
    "' OR '1'='1",
    "x' OR 1=1 --",
    "1; DROP TABLE stage1_datasets; --",
    "\" OR \"\"=\"",
    "') OR ('a'='a",
    "%' OR '%'='",
    "*/ UNION SELECT token_hash FROM stage1_api_tokens --",
    "x'; SELECT pg_sleep(3); --",
    "a\\' OR 1=1 #",
]
SLEEP = 3.0


def _parameters():
    """(method, path, parameter name, location) for every query and path parameter of the spec."""
    for path, ops in merged_spec()["paths"].items():
        for method, op in ops.items():
            for param in op.get("parameters", []):
                if param["in"] in ("query", "path"):
                    yield method.upper(), path, param["name"], param["in"]


PARAMS = sorted(set(_parameters()))


@pytest.fixture(scope="module")
def sentinel(gateway_url, api_headers):
    """A dataset that must survive every payload."""
    import httpx

    slug = f"inj_{uuid.uuid4().hex[:10]}"
    with httpx.Client(base_url=gateway_url, headers=api_headers, timeout=60) as c:
        r = c.post("/api/datasets", json={"dataset_slug": slug, "symbol": "INJ", "granularity": "1h"})
        assert r.status_code in (200, 201), r.text
        yield slug
        c.delete(f"/api/datasets/{slug}")


def _url(path: str, target: str | None, payload: str) -> str:
    """The path with `target` (a path parameter) set to the payload and the others to a random UUID."""
    out = path
    while "{" in out:
        start, end = out.index("{"), out.index("}")
        name = out[start + 1:end]
        out = out[:start] + (payload if name == target else str(uuid.uuid4())) + out[end + 1:]
    return out


@pytest.mark.parametrize("method, path, name, where", PARAMS, ids=[f"{m} {p} {n}" for m, p, n, _ in PARAMS])
def test_injection_through_parameters(client, sentinel, method, path, name, where):
    for payload in PAYLOADS:
        started = time.monotonic()
        if where == "path":
            r = client.request(method, _url(path, name, payload.replace("/", "%2F").replace("#", "%23")
                                            .replace("?", "%3F")))
        else:
            r = client.request(method, _url(path, None, ""), params={name: payload})
        elapsed = time.monotonic() - started
        assert r.status_code < 500, (payload, r.status_code, r.text[:500])
        if "/" not in payload:  # the route is served (an encoded "/" in a path segment is a new segment)
            assert not (r.status_code == 404 and r.json().get("error") == "no such route"), (method, path)
        assert elapsed < SLEEP, (payload, elapsed)
        if where == "path":
            assert r.status_code in (400, 404), (payload, r.status_code, r.text[:500])
        elif r.status_code == 200 and r.headers.get("content-type", "").startswith("application/json"):
            body = r.json()
            if isinstance(body, dict) and "total" in body:
                assert body["total"] == 0, (payload, body)
    assert client.get(f"/api/datasets/{sentinel}").status_code == 200


@pytest.mark.parametrize("field", ["dataset_slug", "ohlcv_measurement", "indicator_measurement"])
def test_injection_through_dataset_names(client, sentinel, field):
    for payload in PAYLOADS:
        body = {"dataset_slug": f"inj_{uuid.uuid4().hex[:8]}", field: payload}
        r = client.post("/api/datasets", json=body)
        assert r.status_code == 400, (field, payload, r.status_code, r.text[:300])
    assert client.get(f"/api/datasets/{sentinel}").status_code == 200


def test_injection_through_run_and_simulation_names(client, sentinel):
    for payload in PAYLOADS:
        r = client.post("/api/runs", json={"dataset_id": sentinel, "prediction_measurement": payload, "folds": []})
        assert r.status_code in (400, 409), (payload, r.status_code, r.text[:300])
    assert client.get(f"/api/datasets/{sentinel}").status_code == 200


def test_token_names_are_data_not_sql(client):
    """A token name may be any text: it is stored exactly as sent (bind parameters)."""
    for payload in PAYLOADS:
        r = client.post("/api/auth/token", json={"name": payload, "scopes": ["read"], "expires_in": 60})
        assert r.status_code == 201, r.text
        listed = client.get("/api/auth/tokens", params={"limit": 50}).json()["items"]
        assert payload in {t["name"] for t in listed}
