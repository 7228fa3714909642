"""The web function's Lambda handler on recorded HttpApi events, over a small fake build: only files in
the build's manifest are served, with their caching; other client paths get index.html (docs/web.md)."""

from __future__ import annotations

import copy
import json

import pytest

from stage1_local.template import functions, load_handler


@pytest.fixture
def web(tmp_path, monkeypatch, event):
    handler = load_handler(functions()["WebFunction"])
    module = __import__("sys").modules["stage1_fn_WebFunction"]
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text('<div id="root"></div>')
    (tmp_path / "assets" / "index-abc123.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("not listed")
    (tmp_path / "stage1-manifest.json").write_text(json.dumps({"files": ["index.html", "assets/index-abc123.js"]}))
    monkeypatch.setattr(module, "DIST", tmp_path)
    base = event("http_api_v2_get_health.json")

    def get(path: str) -> dict:
        e = copy.deepcopy(base)
        e["rawPath"] = e["requestContext"]["http"]["path"] = path
        e["routeKey"] = "GET /{proxy+}"
        return handler(e, None)
    return get


def test_listed_files_and_client_routes(web):
    r = web("/assets/index-abc123.js")
    assert r["statusCode"] == 200 and r["headers"]["cache-control"] == "public, max-age=31536000, immutable"
    for path in ("/", "/runs/compare", "/datasets/x/upload"):
        r = web(path)
        assert r["statusCode"] == 200 and r["headers"]["cache-control"] == "no-cache", path
        assert 'id="root"' in r["body"]
        assert "script-src 'self'" in r["headers"]["content-security-policy"]
        assert r["headers"]["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", ["/secret.txt", "/stage1-manifest.json", "/assets/other.js", "/app.py",
                                  "/assets/../secret.txt", "/..%2fsecret.txt", "/api/nope"])
def test_unlisted_paths_are_404(web, path):
    r = web(path)
    assert r["statusCode"] == 404, (path, r["body"][:200])
    assert "not listed" not in r["body"]
