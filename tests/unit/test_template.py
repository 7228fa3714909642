"""The template is the single source of routes: every function loads and serves what it declares."""

import json
import re

import pytest

from stage1_local.template import functions, load_app, load_handler, path_pattern


def test_path_patterns():
    assert path_pattern("/api/runs/{id}").match("/api/runs/abc")["id"] == "abc"
    assert not path_pattern("/api/runs/{id}").match("/api/runs/abc/predictions")
    assert path_pattern("/api/files/{proxy+}").match("/api/files/a/b")["proxy"] == "a/b"


@pytest.mark.parametrize("name", [n for n, f in functions().items() if f.routes])
def test_every_declared_route_exists_in_its_app(name):
    fn = functions()[name]
    app = load_app(fn)
    # Litestar spells path parameters with their type (`{id:str}`); the template without (`{id}`).
    served = {(method, re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path))
              for route in app.routes for method in getattr(route, "methods", ())}
    for route in fn.routes:
        assert (route.method, route.path) in served, f"{name}: {route.method} {route.path} not in its app"


def test_health_handler_serves_a_recorded_http_api_event(event):
    handler = load_handler(functions()["HealthFunction"])
    response = handler(event("http_api_v2_get_health.json"), None)
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"version": "1.0.0", "status": "ok"}
    assert response["headers"]["x-request-id"] == "Cf1nQhZvDoEEMnQ="
