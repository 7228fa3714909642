"""The gateway serves the merged spec and a docs page that needs no network."""

import re

import httpx

from stage1_local.openapi import merged_spec


def test_the_gateway_serves_the_merged_spec_without_a_token(gateway_url):
    r = httpx.get(f"{gateway_url}/api/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    spec = r.json()
    assert spec["paths"].keys() == merged_spec()["paths"].keys()
    assert spec["components"]["securitySchemes"]["Stage1Token"]["name"] == "X-Stage1-Token"
    bearer = spec["components"]["securitySchemes"]["bearerAuth"]
    assert (bearer["type"], bearer["scheme"]) == ("http", "bearer")
    assert spec["security"] == [{"Stage1Token": []}, {"bearerAuth": []}]


def test_the_docs_page_loads_only_local_assets(gateway_url):
    page = httpx.get(f"{gateway_url}/api/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(a.startswith("/api/docs/") for a in assets), assets
    assert "http://" not in page.text and "https://" not in page.text
    for asset in assets:
        r = httpx.get(f"{gateway_url}{asset}")
        assert r.status_code == 200 and len(r.content) > 10_000, asset
