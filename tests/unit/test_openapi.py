"""The merged OpenAPI document: current on disk, complete over the template, and honest about auth
and errors. Regenerate with `make openapi` when a function's routes or schemas change."""

from __future__ import annotations

import json

import pytest

from stage1_local import openapi
from stage1_local.template import Function, Route, path_pattern, routes


@pytest.fixture(scope="module")
def spec():
    return openapi.merged_spec()


def test_the_committed_spec_is_current(spec):
    assert openapi.SPEC_FILE.exists(), "docs/openapi.json is missing: run `make openapi`"
    committed = openapi.SPEC_FILE.read_text()
    assert committed == openapi.render(spec), "docs/openapi.json is stale: run `make openapi` and commit it"


def api_routes():
    """The template's routes the API documents: not the web client's pages (functions/web)."""
    return [r for r in routes() if r.path.startswith("/api")]


def test_every_route_of_the_template_is_documented_once(spec):
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert documented == {(r.method, r.path) for r in api_routes()}
    ids = [op["operationId"] for ops in spec["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


def test_security_follows_the_template(spec):
    # Either header satisfies a protected operation: X-Stage1-Token or Authorization: Bearer.
    assert spec["security"] == [{"Stage1Token": []}, {"bearerAuth": []}]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["type"] == "http"
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert spec["components"]["securitySchemes"]["Stage1Token"] == {
        "type": "apiKey", "in": "header", "name": "X-Stage1-Token",
        "description": spec["components"]["securitySchemes"]["Stage1Token"]["description"]}
    for route in api_routes():
        op = spec["paths"][route.path][route.method.lower()]
        if route.authorizer:
            assert "security" not in op and {"401", "403"} <= set(op["responses"]), route
        else:
            assert op["security"] in ([], [{"AdminSecret": []}, {"Stage1Token": []}, {"bearerAuth": []}]), route


def test_errors_are_documented_as_the_envelope(spec):
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            responses = op["responses"]
            assert {"400", "429", "4XX", "5XX"} <= set(responses), (method, path)
            for status, response in responses.items():
                if status[0] == "4":
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)


def _fn(name: str, path: str) -> Function:
    return Function(name, openapi.REPO, "app.handler", routes=[Route("GET", path, name, True, path_pattern(path))])


def _sub(path: str, shape: dict, op_id: str = "Get") -> dict:
    return {"paths": {path: {"get": {"operationId": op_id, "responses": {"200": {"description": "ok", "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/Item"}}}}}}}},
        "components": {"schemas": {"Item": shape}}}


def test_merging_keeps_same_named_components_of_different_shapes_apart(monkeypatch):
    subs = {"A": _sub("/api/a", {"type": "object", "title": "A"}),
            "B": _sub("/api/b", {"type": "object", "title": "B"}),
            "C": _sub("/api/c", {"type": "object", "title": "A"})}
    monkeypatch.setattr(openapi, "_sub_spec", lambda fn: json.loads(json.dumps(subs[fn.name])))
    spec = openapi.merged_spec({"A": _fn("A", "/api/a"), "B": _fn("B", "/api/b"), "C": _fn("C", "/api/c")})
    ref = lambda p: spec["paths"][p]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]  # noqa: E731
    assert ref("/api/a") == ref("/api/c") == "#/components/schemas/Item"
    assert ref("/api/b") == "#/components/schemas/BItem"
    assert spec["components"]["schemas"]["BItem"]["title"] == "B"
    assert [spec["paths"][p]["get"]["operationId"] for p in ("/api/a", "/api/b", "/api/c")] == ["Get", "BGet", "CGet"]


def test_a_route_missing_from_its_app_is_an_error(monkeypatch):
    monkeypatch.setattr(openapi, "_sub_spec", lambda fn: {"paths": {}})
    with pytest.raises(LookupError):
        openapi.merged_spec({"A": _fn("A", "/api/a")})
