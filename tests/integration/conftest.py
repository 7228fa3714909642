from __future__ import annotations

import httpx
import pytest

from stage1.core.settings import get_settings


@pytest.fixture(scope="session")
def settings():
    return get_settings()


@pytest.fixture(scope="session")
def gateway_url(settings) -> str:
    url = settings.gateway_url.rstrip("/")
    try:
        httpx.get(f"{url}/api/health", timeout=3).raise_for_status()
    except httpx.HTTPError as exc:
        pytest.fail(f"the local gateway is not up at {url} ({exc}); run `make up` first")
    return url


@pytest.fixture(scope="session")
def api_headers() -> dict[str, str]:
    """Headers every client request carries (the auth piece adds its token here)."""
    return {}


@pytest.fixture
def client(gateway_url, api_headers):
    """An HTTP client against the local gateway: tests call the API exactly as a client would."""
    with httpx.Client(base_url=gateway_url, headers=api_headers, timeout=60) as c:
        yield c
