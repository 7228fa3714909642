"""Auth pieces that need no services: scope rules, the limiter, the authorizer's refusals before any
database work, the in-function scope guard, the admin-secret compare, and the template's auth config."""

from __future__ import annotations

import json

import pytest

from stage1.auth import ratelimit
from stage1.auth.admin import secret_matches
from stage1.auth.authorizer import authorize, token_of
from stage1.auth.credentials import CONFLICTING_TOKENS, MALFORMED_AUTHORIZATION, MAX_AUTHORIZATION_CHARS, MISSING_TOKEN
from stage1.auth.scopes import required_scope
from stage1.auth.tokens import hash_token, new_token, well_formed
from stage1.core.settings import Settings
from stage1_local.template import functions, load_handler, load_template, routes

PUBLIC = {("GET", "/api/health"), ("GET", "/api/healthz"), ("POST", "/api/auth/token"),
          # The web app's pages (functions/web): public, its API calls carry the token.
          ("GET", "/"), ("GET", "/{proxy+}")}


@pytest.mark.parametrize("method, path, scope", [
    ("GET", "/api/datasets", "read"),
    ("HEAD", "/api/datasets", "read"),
    ("POST", "/api/datasets", "write"),
    ("DELETE", "/api/runs/1", "write"),
    ("PUT", "/api/x", "write"),
    ("POST", "/api/questdb/query", "read"),
    ("POST", "/api/questdb/export", "read"),
    ("POST", "/api/questdb/import", "write"),
    ("GET", "/api/auth/tokens", "admin"),
    ("DELETE", "/api/auth/tokens/abc", "admin"),
    ("GET", "/api/auth/tokensx", "read"),
])
def test_required_scope(method, path, scope):
    assert required_scope(method, path) == scope


def test_tokens_are_random_well_formed_and_hashed():
    a, b = new_token(), new_token()
    assert a != b and well_formed(a) and well_formed(b)
    assert not well_formed(a + "x") and not well_formed("s1_" + "!" * 43) and not well_formed("")
    assert hash_token(a) != hash_token(b) and len(hash_token(a)) == 64


def test_secret_compare():
    assert secret_matches("s" * 40, "s" * 40)
    assert not secret_matches("s" * 39, "s" * 40)
    assert not secret_matches("", "")  # an unset secret matches nothing


def test_limiter_allows_a_burst_then_asks_to_wait_and_refills(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: now[0])
    limiter = ratelimit.RateLimiter(rate=2, burst=3)
    assert [limiter.hit("k") for _ in range(3)] == [0, 0, 0]
    assert limiter.hit("k") == 1 and limiter.wait("k") == 1
    assert limiter.hit("other") == 0  # buckets are per key
    now[0] += 0.5  # one token back at 2/s
    assert limiter.hit("k") == 0 and limiter.hit("k") == 1


def test_limiter_forgets_the_least_recent_keys():
    limiter = ratelimit.RateLimiter(rate=1, burst=1, max_keys=2)
    for key in ("a", "b", "c"):
        limiter.hit(key)
    assert set(limiter._buckets) == {"b", "c"}


@pytest.mark.parametrize("event, reason", [
    ({"identitySource": [], "headers": {}}, MISSING_TOKEN),
    ({"identitySource": ["garbage"]}, "invalid token"),
    ({"headers": {"x-stage1-token": "s1_short"}}, "invalid token"),
])
def test_the_authorizer_denies_missing_and_malformed_tokens_without_the_database(event, reason):
    assert authorize({"version": "2.0", "type": "REQUEST", "routeKey": "GET /api/x", **event}) == {
        "isAuthorized": False, "context": {"reason": reason}}


@pytest.mark.parametrize("event", [
    {"identitySource": ["caf\u00e9"]}, {"identitySource": ["s1_" + "\u00e9" * 43]}, {"identitySource": [None]},
    {"identitySource": [b"s1_bytes"]}, {"identitySource": "s1_not_a_list"}, {"identitySource": [["s1_"]]},
    {"headers": {"x-stage1-token": 7}}, {"headers": ["x-stage1-token"]}, {"headers": {"x-stage1-token": "\x00"}},
    {"identitySource": ["s1_" + "A" * 43 + ",s1_" + "A" * 43]}, {"identitySource": ["s1_" + "A" * 10**6]},
    {"identitySource": ["s1_" + "\u0661" * 43]},  # Arabic-Indic digits: \w-like, not ASCII
])
def test_the_authorizer_denies_hostile_identity_sources_without_raising(event):
    """Non-ASCII, non-string, joined or huge: a deny, never a TypeError (API Gateway would answer 500)."""
    answer = authorize({"version": "2.0", "type": "REQUEST", "routeKey": "GET /api/x", **event})
    assert answer["isAuthorized"] is False and answer["context"]["reason"] in ("invalid token", MISSING_TOKEN)


def test_the_admin_secret_compare_takes_any_header_text():
    assert not secret_matches("caf\u00e9", "s" * 40) and not secret_matches("\udcff", "s" * 40)
    assert secret_matches("caf\u00e9" * 8, "caf\u00e9" * 8)


def test_the_authorizer_reads_the_headers_and_the_identity_source_only_without_them():
    """The template lists no identity source (so either header works); an event that still carries one
    and no credential header is read from it."""
    assert token_of({"identitySource": ["a"], "headers": {"x-stage1-token": "b"}}) == "b"
    assert token_of({"identitySource": ["a"], "headers": {}}) == "a"
    assert token_of({"headers": {"x-stage1-token": "b"}}) == "b"
    assert token_of({"headers": {"authorization": "Bearer b"}}) == "b"


TOKEN = "s1_" + "A" * 43


def _bearer_event(event, headers: dict[str, str]) -> dict:
    """The recorded authorizer event as API Gateway sends it with no identity source configured: no
    `identitySource`, the credential only in the (lower-cased) headers."""
    ev = event("http_api_v2_authorizer.json")
    ev.pop("identitySource")
    ev["headers"].pop("x-stage1-token")
    ev["headers"].update(headers)
    return ev


@pytest.mark.parametrize("authorization", [f"Bearer {TOKEN}", f"bearer {TOKEN}", f"BEARER {TOKEN}",
                                           f"Bearer  {TOKEN}", f"Bearer {TOKEN} "])
def test_a_bearer_token_is_read_from_the_authorization_header(event, authorization):
    assert token_of(_bearer_event(event, {"authorization": authorization})) == TOKEN


def test_both_headers_with_the_same_token_are_one_token(event):
    assert token_of(_bearer_event(event, {"authorization": f"Bearer {TOKEN}", "x-stage1-token": TOKEN})) == TOKEN


@pytest.mark.parametrize("headers, reason", [
    ({"authorization": f"Basic {TOKEN}"}, MALFORMED_AUTHORIZATION),
    ({"authorization": "Basic dXNlcjpwYXNz"}, MALFORMED_AUTHORIZATION),
    ({"authorization": "Bearer"}, MALFORMED_AUTHORIZATION),
    ({"authorization": "Bearer "}, MALFORMED_AUTHORIZATION),
    ({"authorization": TOKEN}, MALFORMED_AUTHORIZATION),
    ({"authorization": f"Bearer {TOKEN} {TOKEN}"}, MALFORMED_AUTHORIZATION),
    ({"authorization": f"Bearer {TOKEN},Bearer {TOKEN}"}, MALFORMED_AUTHORIZATION),  # a repeated header, joined
    ({"authorization": f"Bearer\t{TOKEN}"}, MALFORMED_AUTHORIZATION),
    ({"authorization": "Bearer " + "A" * (MAX_AUTHORIZATION_CHARS - 6)}, MALFORMED_AUTHORIZATION),
    ({"authorization": "Bearer s1_" + "A" * 10**6}, MALFORMED_AUTHORIZATION),
    ({"authorization": "Bearer caf\u00e9"}, MALFORMED_AUTHORIZATION),
    ({"authorization": "Bearer s1_short"}, "invalid token"),
    ({"authorization": f"Bearer {TOKEN}", "x-stage1-token": "s1_" + "B" * 43}, CONFLICTING_TOKENS),
    ({"authorization": f"Bearer {TOKEN}", "x-stage1-token": "garbage"}, CONFLICTING_TOKENS),
    ({"authorization": "Basic x", "x-stage1-token": TOKEN}, MALFORMED_AUTHORIZATION),
    ({"authorization": ""}, MISSING_TOKEN),
])
def test_the_authorizer_handler_denies_bad_authorization_headers_without_the_database(event, headers, reason):
    """Through the Lambda handler API Gateway calls, with its v2 event: every bad Authorization header is
    a deny naming why (the reason never holds the token), before any database work (none is running)."""
    handler = load_handler(functions()["AuthorizerFunction"])
    answer = handler(_bearer_event(event, headers), None)
    assert answer == {"isAuthorized": False, "context": {"reason": reason}}
    assert TOKEN not in json.dumps(answer)


def test_the_authorizer_never_logs_the_token(event, caplog):
    handler = load_handler(functions()["AuthorizerFunction"])
    with caplog.at_level("DEBUG"):
        handler(_bearer_event(event, {"authorization": f"Bearer {TOKEN}", "x-stage1-token": TOKEN[:-1] + "B"}), None)
        handler(_bearer_event(event, {"authorization": f"Basic {TOKEN}"}), None)
    assert caplog.records and not any(TOKEN[3:20] in r.getMessage() + str(r.__dict__) for r in caplog.records)


def test_the_lambda_authorizer_handler_is_the_shared_code(event):
    handler = load_handler(functions()["AuthorizerFunction"])
    answer = handler(event("http_api_v2_authorizer.json") | {"identitySource": ["nope"]}, None)
    assert answer == {"isAuthorized": False, "context": {"reason": "invalid token"}}


def _health_with_authorizer(event, scopes: str) -> dict:
    ev = event("http_api_v2_get_health.json")
    ev["requestContext"]["authorizer"] = {"lambda": {"token_id": "t", "token_name": "n", "scopes": scopes}}
    return load_handler(functions()["HealthFunction"])(ev, None)


def test_every_function_checks_the_scope_the_authorizer_passed_on(event):
    """On AWS the authorizer only allows or denies; the function refuses a token without the scope."""
    denied = _health_with_authorizer(event, "write admin")
    assert denied["statusCode"] == 403
    assert json.loads(denied["body"]) == {"error": "this token lacks the 'read' scope",
                                          "details": {"required": "read", "scopes": ["admin", "write"]}}
    assert denied["headers"]["x-request-id"] == "Cf1nQhZvDoEEMnQ="
    assert _health_with_authorizer(event, "read")["statusCode"] == 200


# ---------------------------------------------------------------- template
def _resources() -> dict:
    return load_template()["Resources"]


def _http_api() -> dict:
    return next(r["Properties"] for r in _resources().values() if r["Type"] == "AWS::Serverless::HttpApi")


def test_only_health_and_token_issue_are_public_in_the_template():
    assert {(r.method, r.path) for r in routes() if not r.authorizer} == PUBLIC


def test_the_authorizer_is_the_http_apis_default():
    auth = _http_api()["Auth"]
    config = auth["Authorizers"][auth["DefaultAuthorizer"]]
    assert config["FunctionArn"] == {"Fn::GetAtt": ["AuthorizerFunction", "Arn"]}
    assert config["AuthorizerPayloadFormatVersion"] == "2.0" and config["EnableSimpleResponses"] is True
    # No identity source (API Gateway would demand every listed one in every request, so listing
    # X-Stage1-Token refuses Bearer-only requests), hence no cache (caching needs one): docs/auth.md.
    assert not config["Identity"].get("Headers") and not config["Identity"].get("QueryStrings")
    assert config["Identity"]["ReauthorizeEvery"] == {"Ref": "AuthorizerCacheTtl"}
    ttl = load_template()["Parameters"]["AuthorizerCacheTtl"]
    assert ttl["Default"] == ttl["MinValue"] == ttl["MaxValue"] == 0


def test_cors_and_throttling_come_from_parameters_with_the_local_defaults():
    params = load_template()["Parameters"]
    assert params["CorsAllowOrigins"]["Default"] == Settings().auth.cors_allow_origins == "https://agenticresearch.info"
    api = _http_api()
    condition, cors, otherwise = api["CorsConfiguration"]["Fn::If"]
    assert condition == "HasCorsOrigins" and otherwise == {"Ref": "AWS::NoValue"}
    assert cors["AllowOrigins"] == {"Fn::Split": [",", {"Ref": "CorsAllowOrigins"}]}
    assert {"Authorization", "X-Stage1-Token", "X-Stage1-Admin-Secret", "Content-Type"} <= set(cors["AllowHeaders"])
    assert set(api["DefaultRouteSettings"]) == {"ThrottlingRateLimit", "ThrottlingBurstLimit"}
    # Token issue's own throttle counts all clients together: it must not be a lockout anyone can trigger
    # (per-source limits are the function's, stage1.auth.admin).
    issue = api["RouteSettings"]["POST /api/auth/token"]
    assert issue["ThrottlingRateLimit"] >= 10 and issue["ThrottlingBurstLimit"] >= 20


def test_the_bucket_allows_browser_uploads_and_exposes_etag():
    bucket = next(r for r in _resources().values() if r["Type"] == "AWS::S3::Bucket")
    condition, cors, _ = bucket["Properties"]["CorsConfiguration"]["Fn::If"]
    assert condition == "HasCorsOrigins"
    (rule,) = cors["CorsRules"]
    assert {"PUT", "POST"} <= set(rule["AllowedMethods"]) and rule["ExposedHeaders"] == ["ETag"]
    assert rule["AllowedOrigins"] == {"Fn::Split": [",", {"Ref": "CorsAllowOrigins"}]}


def test_the_local_gateway_resolves_the_template_cors_rule_like_cloudformation():
    from stage1_local.security import resolve

    template = load_template()
    rule = _http_api()["CorsConfiguration"]
    local = Settings.of(cors_allow_origins="https://a.example, http://localhost:5173")
    assert resolve(rule, template, local)["AllowOrigins"] == ["https://a.example", "http://localhost:5173"]
    assert resolve(rule, template, Settings())["AllowOrigins"] == ["https://agenticresearch.info"]
    assert resolve(rule, template, Settings())["MaxAge"] == 600
    assert resolve(rule, template, Settings.of(cors_allow_origins="")) is None  # no browser access
    assert resolve({"Ref": "ThrottlingRateLimit"}, template, Settings()) == template["Parameters"][
        "ThrottlingRateLimit"]["Default"]


# (Token issue on AWS, the Lambda handler with its per-source limits: they live in Postgres now,
# so those tests are in tests/integration/test_shared_limits.py.)


def test_the_request_caller_reaches_sync_handlers_and_never_the_next_request(event):
    """`current_caller` (what create_job records as a job's creator) is set by the scope guard for the
    request being served, is visible in a sync handler's thread, and does not outlive the request."""
    from litestar import get

    from stage1.auth.scopes import current_caller
    from stage1.web.app import create_app, make_handler

    @get("/api/health", sync_to_thread=True)
    def who() -> dict:
        caller = current_caller.get()
        return {"token_id": caller.token_id if caller else None, "admin": caller.admin if caller else None}

    handler = make_handler(create_app([who], title="caller probe"))
    base = event("http_api_v2_get_health.json")

    def call(ctx):
        ev = json.loads(json.dumps(base))
        if ctx is not None:
            ev["requestContext"]["authorizer"] = {"lambda": ctx}
        return json.loads(handler(ev, None)["body"])

    assert call({"token_id": "t-1", "token_name": "a", "scopes": "read"}) == {"token_id": "t-1", "admin": False}
    assert call({"token_id": "t-2", "token_name": "b", "scopes": "read admin"}) == {"token_id": "t-2", "admin": True}
    assert call(None) == {"token_id": None, "admin": None}
    assert current_caller.get() is None


@pytest.mark.parametrize(("a", "b", "same"), [
    ("2001:db8:1:2::1", "2001:db8:1:2:ffff::9", True),  # one host's /64
    ("2001:db8:1:2::1", "2001:db8:1:3::1", False),
    ("203.0.113.5", "::ffff:203.0.113.5", True),  # IPv4-mapped is the IPv4 address
    ("203.0.113.5", "203.0.113.6", False),
    ("unknown", "unknown", True),
])
def test_limits_key_ipv6_sources_by_their_64(a, b, same):
    from stage1.auth.admin import source_key

    assert (source_key(a) == source_key(b)) is same


# ---------------------------------------------------------------- the local gateway's identity sources
def _guard(identity: tuple[bytes, ...], headers: list[tuple[bytes, bytes]]):
    """Run the gateway's authorizer guard on one request; the authorizer records the event it gets."""
    import asyncio

    from stage1.auth.ratelimit import RateLimiter
    from stage1_local.security import Security
    from stage1_local.template import Route

    seen: list[dict] = []

    def authorizer(ev, _context):
        seen.append(ev)
        return {"isAuthorized": True, "context": {"token_id": "t", "token_name": "n", "scopes": "read"}}

    security = Security(Settings(), load_template(), RateLimiter(100, 100), authorizer, identity)
    scope = {"type": "http", "method": "GET", "path": "/api/datasets", "headers": headers, "client": ("127.0.0.1", 1)}
    error = asyncio.run(security.authorizer(scope, Route("GET", "/api/datasets", "DatasetsFunction")))
    return error, seen


def test_the_gateway_reads_the_templates_identity_sources():
    from stage1_local.security import identity_headers

    assert identity_headers(load_template()) == ()  # none: both token headers reach the authorizer


def test_without_identity_sources_the_gateway_always_calls_the_authorizer():
    error, seen = _guard((), [(b"authorization", b"Bearer " + TOKEN.encode())])
    assert error is None and len(seen) == 1
    assert seen[0]["identitySource"] is None and seen[0]["headers"]["authorization"] == f"Bearer {TOKEN}"


def test_a_listed_identity_source_is_required_as_api_gateway_requires_it():
    """Were X-Stage1-Token listed again (to cache), a Bearer-only request would be a 401 without the
    authorizer: the local gateway must show that, as API Gateway would."""
    error, seen = _guard((b"x-stage1-token",), [(b"authorization", b"Bearer " + TOKEN.encode())])
    assert error is not None and error.status_code == 401 and seen == []
    error, seen = _guard((b"x-stage1-token",), [(b"x-stage1-token", TOKEN.encode())])
    assert error is None and seen[0]["identitySource"] == [TOKEN]
