"""Rate limits, admin-secret guessing, CORS origins and the auth switch, each on a private gateway
started with its own settings (the gateway's own limits are per process, so the shared gateways stay
untouched). The per-source limits of token issue are shared by every process (Postgres: two gateways
sharing one budget are tests/integration/test_shared_limits.py), so each test takes fresh source
addresses (`gateway_support.fresh_source`)."""

from __future__ import annotations

import time

import httpx
import pytest
from gateway_support import fresh_source, issue_from, private_gateway


@pytest.fixture(scope="module")
def strict_gateway():
    """Tiny limits and two allowed origins."""
    with private_gateway(rate_limit_rps="1", rate_limit_burst="5", admin_secret_attempts_per_minute="3",
                         cors_allow_origins="https://agenticresearch.info, http://localhost:5173") as url:
        yield url


def _mint(url: str, secret: str, scopes=("read", "write", "admin")) -> str:
    r = httpx.post(f"{url}/api/auth/token", headers={"X-Stage1-Admin-Secret": secret},
                   json={"name": "limits", "scopes": list(scopes), "expires_in": 600})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def test_a_token_over_its_rate_gets_429_with_retry_after(strict_gateway, settings):
    token = _mint(strict_gateway, settings.auth.admin_secret)
    with httpx.Client(base_url=strict_gateway, headers={"X-Stage1-Token": token}) as c:
        statuses = [c.get("/api/auth/tokens", params={"limit": 1}).status_code for _ in range(8)]
        assert statuses[:5] == [200] * 5 and statuses[-1] == 429, statuses
        r = c.get("/api/auth/tokens")
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1
        assert r.json()["error"] == "rate limited" and r.json()["details"] == {"limit_per_second": 1.0, "burst": 5}
        # Another token has its own bucket.
        other = _mint(strict_gateway, settings.auth.admin_secret)
        assert c.get("/api/auth/tokens", headers={"X-Stage1-Token": other}).status_code == 200
        time.sleep(int(r.headers["retry-after"]))
        assert c.get("/api/auth/tokens").status_code == 200


def test_failed_authentications_are_limited_per_address(strict_gateway, settings):
    valid = _mint(strict_gateway, settings.auth.admin_secret)
    statuses = [httpx.get(f"{strict_gateway}/api/datasets", headers={"X-Stage1-Token": "s1_" + "B" * 43}).status_code
                for _ in range(8)]
    assert 401 in statuses and statuses[-1] == 429, statuses
    assert httpx.get(f"{strict_gateway}/api/datasets").status_code == 429  # a missing token is a failure too
    # A valid token from the same address is limited by its own bucket only.
    assert httpx.get(f"{strict_gateway}/api/auth/tokens", headers={"X-Stage1-Token": valid}).status_code == 200


@pytest.fixture(scope="module")
def issue_gateway():
    """Three wrong secrets and five issues per source and minute."""
    with private_gateway(admin_secret_attempts_per_minute="3", admin_secret_issues_per_minute="5") as url:
        yield url


def test_admin_secret_guessing_is_limited_per_source_and_never_locks_out_the_secret(issue_gateway, settings):
    guesser, other = fresh_source(), fresh_source()
    statuses = [issue_from(issue_gateway, guesser, f"guess-{i}").status_code for i in range(5)]
    assert statuses == [401, 401, 401, 429, 429], statuses
    r = issue_from(issue_gateway, guesser, "again")
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert set(r.json()) == {"error", "details"}
    # A colleague behind the same address who knows the secret still gets a token, at once.
    r = issue_from(issue_gateway, guesser, settings.auth.admin_secret)
    assert r.status_code == 201, r.text
    # ... and the guesser's budget did not grow with that success.
    assert issue_from(issue_gateway, guesser, "guess-after").status_code == 429
    # Another source is not affected at all.
    assert issue_from(issue_gateway, other, "typo").status_code == 401
    assert issue_from(issue_gateway, other, settings.auth.admin_secret).status_code == 201


def test_bad_tokens_on_the_issue_route_count_as_failures_of_their_source(issue_gateway):
    with httpx.Client(transport=httpx.HTTPTransport(local_address=fresh_source()), timeout=30) as c:
        statuses = [c.post(f"{issue_gateway}/api/auth/token", json={"name": "x", "scopes": ["read"]},
                           headers={"X-Stage1-Token": "s1_" + "C" * 43}).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429], statuses


def test_correct_secret_issuance_has_its_own_generous_limit(issue_gateway, settings):
    source = fresh_source()
    statuses = [issue_from(issue_gateway, source, settings.auth.admin_secret).status_code for _ in range(6)]
    assert statuses == [201] * 5 + [429], statuses
    assert issue_from(issue_gateway, fresh_source(), settings.auth.admin_secret).status_code == 201


def test_configured_origins_are_all_allowed(strict_gateway):
    for origin in ("https://agenticresearch.info", "http://localhost:5173"):
        r = httpx.options(f"{strict_gateway}/api/datasets",
                          headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
        assert r.status_code == 204 and r.headers["access-control-allow-origin"] == origin
    r = httpx.options(f"{strict_gateway}/api/datasets",
                      headers={"Origin": "http://localhost:8080", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in r.headers


def test_auth_can_be_turned_off_for_local_experiments():
    with private_gateway(auth_enabled="false") as url:
        r = httpx.get(f"{url}/api/auth/tokens", params={"limit": 1})
        assert r.status_code == 200, r.text
        # Token issue still needs the admin secret: the switch only drops the gateway's token check.
        assert httpx.post(f"{url}/api/auth/token", json={"name": "x", "scopes": ["read"]}).status_code == 401


def test_worker_routes_fail_closed_when_no_worker_token_is_set(settings):
    """Without STAGE1_WEBHOOK_TOKEN the gateway's /_local/ routes refuse everything, even a guess of
    the empty token (before, they were open to anyone who could reach the port)."""
    with private_gateway(webhook_token="") as url:
        for path in ("/_local/s3-events", "/_local/invoke/SweeperFunction", "/_local/invoke/ImporterFunction"):
            token = settings.auth.webhook_token
            for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": f"Bearer {token}"}):
                r = httpx.post(f"{url}{path}", json={"Records": [], "job_id": "x"}, headers=headers)
                assert r.status_code == 401 and set(r.json()) == {"error", "details"}, (path, r.text)
        assert httpx.head(f"{url}/_local/s3-events").status_code == 401
        assert httpx.get(f"{url}/api/health").status_code == 200  # the API itself is unaffected
