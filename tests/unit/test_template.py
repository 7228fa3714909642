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
    # Litestar spells path parameters with their type (`{id:str}`); the template without (`{id}`), and
    # a greedy `{proxy+}` is Litestar's `{proxy:path}`.
    served = {(method, re.sub(r"\{(\w+):\w+\}", r"{\1}", re.sub(r"\{(\w+):path\}", r"{\1+}", route.path)))
              for route in app.routes for method in getattr(route, "methods", ())}
    for route in fn.routes:
        assert (route.method, route.path) in served, f"{name}: {route.method} {route.path} not in its app"


def test_health_handler_serves_a_recorded_http_api_event(event):
    handler = load_handler(functions()["HealthFunction"])
    response = handler(event("http_api_v2_get_health.json"), None)
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"version": "1.0.0", "status": "ok"}
    assert response["headers"]["x-request-id"] == "Cf1nQhZvDoEEMnQ="


# Which functions may see each secret (a NoEcho parameter of the template). A new secret, or a
# secret given to one more function, must be added here on purpose.
SECRET_ALLOWLIST = {
    # Every function reads or writes Postgres (metadata, jobs, tokens), so the DSN is global.
    "PostgresDsn": "every function",
    # Only token issue checks the admin secret; the authorizer checks tokens, not the secret.
    "AdminSecret": {"AuthFunction"},
    # The functions that talk to QuestDB's HTTP API or ILP (uploads check whether a table exists; the
    # sweeper drops the tables of abandoned runs).
    "QuestDbPassword": {"HealthFunction", "DatasetsFunction", "RunsFunction", "SimulationsFunction",
                        "QuestDbFunction", "ExporterFunction", "ImporterFunction", "UploadsFunction",
                        "SweeperFunction"},
    # User SQL runs as QuestDB's read-only user: only the read-only SQL endpoint.
    "QuestDbPgReadonlyDsn": {"QuestDbFunction"},
}


def _refs(value) -> set[str]:
    """Parameter names a template value refers to (!Ref, or ${Name} inside !Sub)."""
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            return {value["Ref"]}
        if set(value) == {"Fn::Sub"}:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            return set(re.findall(r"\$\{([A-Za-z0-9]+)\}", text)) | _refs(value["Fn::Sub"][1:]
                                                                          if isinstance(value["Fn::Sub"], list) else [])
        return set().union(*(_refs(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_refs(v) for v in value)) if value else set()
    return set()


def _secrets_by_function() -> tuple[set[str], dict[str, set[str]]]:
    from stage1_local.template import load_template

    template = load_template()
    secrets = {name for name, p in template["Parameters"].items() if p.get("NoEcho")}
    env = lambda node: ((node or {}).get("Environment") or {}).get("Variables") or {}  # noqa: E731
    global_refs = _refs(env(template["Globals"]["Function"]))
    seen = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            seen[name] = (global_refs | _refs(env(resource["Properties"]))) & secrets
    return secrets, seen


def test_every_secret_has_an_allowlist():
    secrets, _ = _secrets_by_function()
    assert secrets == set(SECRET_ALLOWLIST), "add the new NoEcho parameter to SECRET_ALLOWLIST"


@pytest.mark.parametrize("secret", sorted(SECRET_ALLOWLIST))
def test_each_secret_reaches_only_its_functions(secret):
    _, seen = _secrets_by_function()
    holders = {fn for fn, refs in seen.items() if secret in refs}
    allowed = set(seen) if SECRET_ALLOWLIST[secret] == "every function" else SECRET_ALLOWLIST[secret]
    assert holders == allowed, f"{secret}: to {sorted(holders - allowed)}, missing from {sorted(allowed - holders)}"


def test_snapstart_is_opt_in_on_every_api_function():
    """EnableSnapStart (default false) turns SnapStart on for every API function; SnapStart applies only to
    published versions, so each one publishes the `live` alias its routes invoke (SAM cannot make
    AutoPublishAlias conditional)."""
    from stage1_local.template import load_template

    template = load_template()
    assert template["Parameters"]["EnableSnapStart"]["Default"] == "false"
    assert template["Conditions"]["SnapStartOn"] == {"Fn::Equals": [{"Ref": "EnableSnapStart"}, "true"]}
    api = [fn for fn in functions().values() if fn.routes and fn.package_type != "Image"]
    assert api
    for fn in api:
        props = template["Resources"][fn.name]["Properties"]
        assert props["AutoPublishAlias"] == "live", fn.name
        assert props["SnapStart"] == {"ApplyOn": {"Fn::If": ["SnapStartOn", "PublishedVersions", "None"]}}, fn.name
