"""`Authorization: Bearer <token>` beside `X-Stage1-Token`, through a real gateway and Postgres, as a
browser or curl sends it (docs/auth.md, "Two headers"): every scope on real endpoints, the scheme in
any case, malformed values and conflicting headers refused with the 401 envelope, revocation."""

from __future__ import annotations

import httpx
import pytest

from stage1.auth.credentials import CONFLICTING_TOKENS, MALFORMED_AUTHORIZATION, MAX_AUTHORIZATION_CHARS


@pytest.fixture
def mint(gateway_url, settings, unique):
    def _mint(scopes: list[str]) -> dict:
        r = httpx.post(f"{gateway_url}/api/auth/token", headers={"X-Stage1-Admin-Secret": settings.auth.admin_secret},
                       json={"name": f"test-bearer-{unique}", "scopes": scopes, "expires_in": 3600}, timeout=30)
        assert r.status_code == 201, r.text
        return r.json()

    return _mint


def bearer(token: str, scheme: str = "Bearer") -> dict[str, str]:
    return {"Authorization": f"{scheme} {token}"}


def envelope(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, f"{r.status_code} {r.text[:300]}"
    body = r.json()
    assert set(body) == {"error", "details"}, body
    return body


def test_bearer_reads_writes_and_administers(gateway_url, mint, unique):
    read, write, admin = (mint([s])["token"] for s in ("read", "write", "admin"))
    with httpx.Client(base_url=gateway_url, timeout=60) as c:
        assert c.get("/api/datasets", params={"limit": 1}, headers=bearer(read)).status_code == 200
        # The scope still decides: the same 403 envelope as with X-Stage1-Token.
        assert envelope(c.get("/api/auth/tokens", headers=bearer(read)), 403)["details"]["required"] == "admin"
        slug = f"bearer_{unique}"
        r = c.post("/api/datasets", headers=bearer(write), json={"dataset_slug": slug, "symbol": "BRR",
                                                                 "granularity": "1h"})
        assert r.status_code == 201, r.text
        assert c.delete(f"/api/datasets/{slug}", headers=bearer(write)).status_code in (200, 204)
        listed = c.get("/api/auth/tokens", params={"limit": 5}, headers=bearer(admin))
        assert listed.status_code == 200 and listed.json()["items"], listed.text
        # Token issue has no authorizer: the function reads the admin token from either header too.
        issued = c.post("/api/auth/token", headers=bearer(admin), json={"name": f"by-bearer-{unique}",
                                                                        "scopes": ["read"]})
        assert issued.status_code == 201, issued.text


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "bEaReR"])
def test_the_scheme_is_case_insensitive(gateway_url, mint, scheme):
    token = mint(["read"])["token"]
    r = httpx.get(f"{gateway_url}/api/datasets", params={"limit": 1}, headers=bearer(token, scheme))
    assert r.status_code == 200, r.text


def test_malformed_authorization_headers_are_the_401_envelope(gateway_url, mint):
    token = mint(["read"])["token"]
    for value in (f"Basic {token}", "Basic dXNlcjpwYXNz", "Bearer", token, f"Bearer {token} {token}",
                  f"Bearer {token}" + " x" * MAX_AUTHORIZATION_CHARS, "Bearer " + "A" * 10_000):
        r = httpx.get(f"{gateway_url}/api/datasets", headers={"Authorization": value})
        assert envelope(r, 401)["error"] in (MALFORMED_AUTHORIZATION, "invalid token"), value[:40]
        assert token not in r.text


def test_both_headers_must_carry_the_same_token(gateway_url, mint):
    first, second = mint(["read"])["token"], mint(["read"])["token"]
    same = {"X-Stage1-Token": first, **bearer(first)}
    assert httpx.get(f"{gateway_url}/api/datasets", params={"limit": 1}, headers=same).status_code == 200
    # Two valid tokens: which one is meant is a guess, so neither is used.
    r = httpx.get(f"{gateway_url}/api/datasets", headers={"X-Stage1-Token": first, **bearer(second)})
    assert envelope(r, 401)["error"] == CONFLICTING_TOKENS
    assert first not in r.text and second not in r.text


def test_a_revoked_token_is_refused_as_bearer_at_once(gateway_url, mint):
    victim, admin = mint(["read"]), mint(["admin"])["token"]
    url = f"{gateway_url}/api/datasets"
    assert httpx.get(url, params={"limit": 1}, headers=bearer(victim["token"])).status_code == 200
    revoked = httpx.delete(f"{gateway_url}/api/auth/tokens/{victim['token_id']}", headers=bearer(admin))
    assert revoked.status_code == 200, revoked.text
    assert envelope(httpx.get(url, headers=bearer(victim["token"])), 401)["error"] == "token revoked"


def test_a_browser_may_send_authorization_cross_origin(gateway_url, settings):
    origin = settings.auth.cors_allow_origins.split(",")[0].strip()
    r = httpx.options(f"{gateway_url}/api/datasets", headers={
        "Origin": origin, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"})
    assert r.status_code == 204
    assert "authorization" in r.headers["access-control-allow-headers"].split(",")
