from __future__ import annotations

import uuid

import httpx
import pytest

from stage1.core.settings import get_settings


@pytest.fixture(scope="session")
def settings():
    return get_settings()


@pytest.fixture(scope="session")
def gateway_url(settings) -> str:
    url = settings.service.gateway_url.rstrip("/")
    try:
        httpx.get(f"{url}/api/health", timeout=3).raise_for_status()
    except httpx.HTTPError as exc:
        pytest.fail(f"the local gateway is not up at {url} ({exc}); run `make up` first")
    return url


@pytest.fixture(scope="session")
def api_token(gateway_url, settings) -> str:
    """A token with every scope, minted through the real API with the admin secret (docs/auth.md)."""
    r = httpx.post(
        f"{gateway_url}/api/auth/token",
        headers={"X-Stage1-Admin-Secret": settings.auth.admin_secret},
        json={"name": f"pytest-{uuid.uuid4().hex[:8]}", "scopes": ["read", "write", "admin"], "expires_in": 6 * 3600},
        timeout=30,
    )
    if r.status_code == 404:  # a gateway started before the auth function existed: it checks no token
        return ""
    if r.status_code != 201:
        pytest.fail(f"cannot mint a test token at {gateway_url}: HTTP {r.status_code} {r.text[:300]}")
    return r.json()["token"]


@pytest.fixture(scope="session")
def api_headers(api_token) -> dict[str, str]:
    """Headers every client request carries: a valid token (scopes read, write, admin)."""
    return {"X-Stage1-Token": api_token} if api_token else {}


@pytest.fixture
def client(gateway_url, api_headers):
    """An HTTP client against the local gateway: tests call the API exactly as a client would."""
    with httpx.Client(base_url=gateway_url, headers=api_headers, timeout=60) as c:
        yield c
