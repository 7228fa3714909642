"""The per-source limits of token issue are ONE budget for every process (stage1.auth.buckets, in
Postgres): two gateways of the working tree stand for two warm Lambda containers. Before, each
process had its own bucket, so a guesser alternating between N containers got N times the budget.

Every test takes fresh source addresses (the buckets outlast the gateways), and refills a bucket by
setting its stamp back in Postgres rather than by sleeping."""

from __future__ import annotations

import json
import secrets
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import psycopg
import pytest
from gateway_support import free_port, fresh_source, issue_from, private_gateway

from stage1.auth import admin
from stage1.core.settings import Settings
from stage1.jobs.sweeper import sweep_once
from stage1_local.template import functions, load_handler

ATTEMPTS, ISSUES = 4, 3  # per source and minute, on both gateways


@pytest.fixture(scope="module")
def gateways():
    """Two gateway processes on the same Postgres, with small limits."""
    with ExitStack() as stack:
        yield [stack.enter_context(private_gateway(admin_secret_attempts_per_minute=str(ATTEMPTS),
                                                   admin_secret_issues_per_minute=str(ISSUES)))
               for _ in range(2)]


def _bucket(settings, bucket: str, key: str) -> dict | None:
    with psycopg.connect(settings.postgres.pg_dsn) as conn:
        row = conn.execute("select level, stamp, allowed, full_at from stage1_rate_buckets "
                           "where bucket = %s and key = %s", (bucket, key)).fetchone()
    return None if row is None else dict(zip(("level", "stamp", "allowed", "full_at"), row, strict=True))


def _age(settings, bucket: str, key: str, seconds: float) -> None:
    """As if the bucket's last hit were `seconds` earlier (the refill a wait would bring)."""
    with psycopg.connect(settings.postgres.pg_dsn) as conn:
        conn.execute("update stage1_rate_buckets set stamp = stamp - make_interval(secs => %s), "
                     "full_at = full_at - make_interval(secs => %s) where bucket = %s and key = %s",
                     (seconds, seconds, bucket, key))


def test_wrong_secrets_share_one_budget_across_processes(gateways, settings):
    a, b = gateways
    guesser = fresh_source()
    answers = [issue_from((a, b)[i % 2], guesser, f"guess-{i}") for i in range(ATTEMPTS + 2)]
    assert [r.status_code for r in answers] == [401] * ATTEMPTS + [429, 429], [r.text for r in answers]
    assert answers[-1].json()["error"].startswith("too many failed attempts")
    # The last token went just now: one is back in 60/ATTEMPTS seconds, whichever process answers.
    assert 1 <= int(answers[-1].headers["retry-after"]) <= 60 // ATTEMPTS
    # The right secret still gets through on both, at once (its own bucket) ...
    assert issue_from(a, guesser, settings.auth.admin_secret).status_code == 201
    assert issue_from(b, guesser, settings.auth.admin_secret).status_code == 201
    # ... and does not refill the guesser's budget.
    assert issue_from(a, guesser, "after").status_code == 429
    # The bucket refills at ATTEMPTS a minute: one period later exactly one more guess passes.
    _age(settings, admin.FAILURES, guesser, 60 / ATTEMPTS + 0.5)
    assert [issue_from(g, guesser, "later").status_code for g in (b, a)] == [401, 429]
    # Another source is not affected.
    assert issue_from(b, fresh_source(), "typo").status_code == 401


def test_concurrent_guesses_never_spend_more_than_the_budget(gateways):
    """Twelve wrong secrets at once, half to each process: exactly ATTEMPTS pass as 401. A
    read-then-write limiter would let two requests both spend the same last token."""
    a, b = gateways
    source = fresh_source()
    with ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(lambda i: issue_from((a, b)[i % 2], source, f"race-{i}").status_code, range(12)))
    assert sorted(statuses) == [401] * ATTEMPTS + [429] * (12 - ATTEMPTS), statuses


def test_issues_share_one_budget_across_processes(gateways, settings):
    a, b = gateways
    source = fresh_source()
    answers = [issue_from((a, b)[i % 2], source, settings.auth.admin_secret) for i in range(ISSUES + 1)]
    assert [r.status_code for r in answers] == [201] * ISSUES + [429], [r.text for r in answers]
    assert answers[-1].json()["error"].startswith("too many tokens issued")
    assert 1 <= int(answers[-1].headers["retry-after"]) <= 60 // ISSUES
    # A wrong secret from that source is judged by the failure bucket: still a plain 401.
    assert issue_from(a, source, "typo").status_code == 401


def test_bad_tokens_and_wrong_secrets_share_the_failure_budget(gateways):
    """Bad tokens on the issue route count as failures of their source, in the same shared bucket."""
    a, b = gateways
    source = fresh_source()
    bad_token = {"X-Stage1-Token": "s1_" + "C" * 43}
    statuses = [issue_from(a, source, headers=bad_token).status_code,
                issue_from(b, source, "wrong").status_code,
                issue_from(b, source, headers={"Authorization": "Bearer s1_" + "D" * 43}).status_code,
                issue_from(a, source, headers={"X-Stage1-Token": "garbage"}).status_code,
                issue_from(b, source, headers=bad_token).status_code]
    assert statuses == [401] * ATTEMPTS + [429], statuses


def test_the_sweeper_deletes_buckets_that_are_full_again(gateways, settings):
    a, _ = gateways
    idle, busy = fresh_source(), fresh_source()
    for source in (idle, busy):
        assert issue_from(a, source, "wrong").status_code == 401
    row = _bucket(settings, admin.FAILURES, busy)
    assert row is not None and row["level"] == pytest.approx(ATTEMPTS - 1, abs=0.05) and row["allowed"]
    _age(settings, admin.FAILURES, idle, 61)  # idle for more than burst/rate = 60 s: full again
    sweep_once({})  # (a private gateway's own sweeper loop may have deleted it first: same outcome)
    assert _bucket(settings, admin.FAILURES, idle) is None
    assert _bucket(settings, admin.FAILURES, busy) is not None  # not full yet: kept
    # A deleted bucket is a full one: the source has its whole budget again.
    assert [issue_from(a, idle, f"g{i}").status_code for i in range(ATTEMPTS + 1)] == [401] * ATTEMPTS + [429]


def test_postgres_down_is_a_503_naming_postgres(settings):
    """The limit needs Postgres as the issue does: unreachable, a wrong secret is a 503 too (before,
    it was a 401 without Postgres, with a per-process limit; the right secret was a 503 already, at
    the insert of the token). Each attempt waits for the pool's 5 s timeout: one is enough."""
    dsn = f"postgresql://stage1@127.0.0.1:{free_port()}/stage1"  # nothing listens there
    with private_gateway(healthy=False, pg_dsn=dsn) as url:
        r = issue_from(url, fresh_source(), "wrong")
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["details"]["service"] == "postgres" and body["error"].startswith("postgres unavailable")


# ---------------------------------------------------------------- token issue on AWS (the Lambda handler)
SECRET = "a-test-admin-secret-of-32-characters-at-least"  # noqa: S105 - a test value


@pytest.fixture
def issue_handler(monkeypatch):
    """The auth function's Lambda handler, in this process, with a known secret and small limits."""
    settings = Settings.of(admin_secret=SECRET, admin_secret_attempts_per_minute=2, admin_secret_issues_per_minute=3)
    monkeypatch.setattr(admin, "get_settings", lambda: settings)
    return load_handler(functions()["AuthFunction"])


def _issue_event(event, source_ip: str, headers: dict[str, str], forwarded_for: str = "198.51.100.7") -> dict:
    ev = event("http_api_v2_post_simulation_bad_body.json")
    ev["routeKey"] = ev["requestContext"]["routeKey"] = "POST /api/auth/token"
    ev["rawPath"] = ev["requestContext"]["http"]["path"] = "/api/auth/token"
    ev["requestContext"]["http"]["sourceIp"] = source_ip
    ev["requestContext"].pop("authorizer")  # the route has no authorizer
    ev["headers"] = {"content-type": "application/json", "x-forwarded-for": forwarded_for, **headers}
    ev["body"] = json.dumps({"name": "x", "scopes": ["read"]})
    return ev


def _aws_source() -> str:
    """A fresh IPv6 /64 of the documentation prefix (the buckets key IPv6 by /64)."""
    return f"2001:db8:{secrets.token_hex(2)}:{secrets.token_hex(2)}::1"


@pytest.mark.parametrize("headers", [
    {"x-stage1-admin-secret": "caf\u00e9"}, {"x-stage1-admin-secret": "\u2028" * 40}, {"x-stage1-admin-secret": ""},
    {"x-stage1-admin-secret": f"{SECRET},{SECRET}"}, {"x-stage1-admin-secret": "x" * 100_000},
    {"x-stage1-token": "caf\u00e9"}, {"x-stage1-token": "Bearer"}, {"x-stage1-token": ""}, {},
])
def test_hostile_issue_headers_on_aws_are_a_401_envelope(issue_handler, event, headers):
    out = issue_handler(_issue_event(event, _aws_source(), headers), None)
    assert out["statusCode"] == 401, out
    assert set(json.loads(out["body"])) == {"error", "details"}


def test_issue_limits_key_on_the_source_ip_never_on_x_forwarded_for(issue_handler, event):
    def issue(source: str, secret: str, forwarded: str = "198.51.100.7") -> int:
        ev = _issue_event(event, source, {"x-stage1-admin-secret": secret}, forwarded)
        return issue_handler(ev, None)["statusCode"]

    guesser = _aws_source()
    # A guesser rotating X-Forwarded-For is still one source; so is the rest of its /64.
    assert [issue(guesser, "wrong", f"10.0.0.{i}") for i in range(3)] == [401, 401, 429]
    assert issue(guesser.replace("::1", "::2"), "wrong") == 429
    assert issue(guesser, SECRET) == 201  # the right secret is not locked out
    assert issue(_aws_source(), "wrong") == 401  # another source has its own bucket
