"""The web endpoint group through the gateway: the built SPA, its caching and security headers, the
SPA fallback, and that /api/* keeps winning over the catch-all (docs/web.md). Needs `make web`."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

DIST = Path(__file__).resolve().parents[2] / "functions" / "web" / "dist"


@pytest.fixture(scope="module")
def built() -> dict:
    manifest = DIST / "stage1-manifest.json"
    if not manifest.exists():
        pytest.fail("functions/web/dist is not built: run `make web`")
    return json.loads(manifest.read_text())


def test_index_and_client_routes_are_the_app_uncached(gateway_url, built):
    for path in ("/", "/runs/compare", "/datasets/btc_1h/upload"):
        r = httpx.get(gateway_url + path, timeout=10)
        assert r.status_code == 200, (path, r.text[:200])
        assert r.headers["content-type"].startswith("text/html")
        assert r.headers["cache-control"] == "no-cache"
        assert '<div id="root">' in r.text
        csp = r.headers["content-security-policy"]
        for rule in ("default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'",
                     "base-uri 'none'", "object-src 'none'", "connect-src 'self' "):
            assert rule in csp, (rule, csp)
        assert "unsafe" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"


def test_hashed_assets_are_immutable(gateway_url, built):
    assets = [f for f in built["files"] if f.startswith("assets/") and f.endswith(".js")]
    assert assets
    r = httpx.get(f"{gateway_url}/{assets[0]}", timeout=10)
    assert r.status_code == 200
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.headers["content-type"].startswith("text/javascript")


@pytest.mark.parametrize("path", ["/assets/nope.js", "/app.py", "/stage1-manifest.json", "/.vite/manifest.json",
                                  "/..%2f..%2fapp.py", "/assets/..%2f..%2fapp.py", "/ui/package.json", "/favicon.ico"])
def test_only_built_files_are_served(gateway_url, built, path):
    r = httpx.get(gateway_url + path, timeout=10)
    assert r.status_code in (400, 404), (path, r.status_code, r.text[:200])
    assert "import " not in r.text and "root:" not in r.text


def test_api_routes_win_over_the_catch_all(gateway_url, built, api_headers):
    r = httpx.get(f"{gateway_url}/api/no_such_route/x/y", timeout=10)
    assert r.status_code == 404 and r.json()["error"], r.text[:200]
    r = httpx.get(f"{gateway_url}/api/datasets", headers=api_headers, timeout=10)
    assert r.status_code == 200 and "datasets" in r.json()
    r = httpx.get(f"{gateway_url}/api/datasets", timeout=10)  # the catch-all is public, the API is not
    assert r.status_code == 401


@pytest.mark.parametrize("path", ["/%2e%2e/%2e%2e/etc/passwd", "/../../etc/passwd", "/assets/../../../app"])
def test_traversal_without_an_extension_is_just_the_app(gateway_url, built, path):
    r = httpx.get(gateway_url + path, timeout=10)
    assert r.status_code in (200, 404), r.status_code
    assert "root:" not in r.text and "def serve" not in r.text
    if r.status_code == 200:
        assert '<div id="root">' in r.text
