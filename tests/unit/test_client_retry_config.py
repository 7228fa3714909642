"""The client's one retry policy and its config profiles (docs/client.md): which failures are retried,
for which methods, how long; the TOML file's writer, mode and precedence."""

from __future__ import annotations

import os
import stat
import time

import httpx
import pytest

from stage1_client import ApiError, Client
from stage1_client.config import ConfigError, dump_profiles, load_profiles, resolve, save_profile
from stage1_client.retry import RetryPolicy, parse_retry_after

FAST = RetryPolicy(attempts=4, total_seconds=5, backoff=0.001, max_backoff=0.002, max_retry_after=1)


def _client(answers: list, policy: RetryPolicy = FAST) -> tuple[Client, list[str]]:
    calls: list[str] = []
    queue = iter(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        answer = next(queue)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return Client("http://api.test", "t", retry=policy, transport=httpx.MockTransport(handler)), calls


def _ok() -> httpx.Response:
    return httpx.Response(200, json={"version": "1", "status": "ok"})


def test_503_is_retried_for_get_but_not_for_post():
    c, calls = _client([httpx.Response(503, json={"error": "questdb unavailable", "details": None}), _ok()])
    assert c.health().version == "1" and calls == ["GET", "GET"]
    c, calls = _client([httpx.Response(503, json={"error": "questdb unavailable", "details": None}), _ok()])
    with pytest.raises(ApiError) as info:
        c.request("POST", "/api/x", dict, body={})
    assert info.value.status == 503 and calls == ["POST"] and info.value.exit_code == 5


def test_a_post_marked_safe_is_retried_and_429_is_retried_for_any_method():
    c, calls = _client([httpx.Response(503), _ok()])
    assert c.request("POST", "/api/questdb/query", dict, body={}, safe=True)["status"] == "ok"
    assert calls == ["POST", "POST"]
    c, calls = _client([httpx.Response(429, headers={"Retry-After": "0"}), _ok()])
    assert c.request("POST", "/api/x", dict, body={})["status"] == "ok" and calls == ["POST", "POST"]


def test_refused_connections_are_retried_for_posts_but_dropped_ones_only_for_gets():
    req = httpx.Request("POST", "http://api.test/x")
    c, calls = _client([httpx.ConnectError("refused", request=req), _ok()])
    assert c.request("POST", "/api/x", dict, body={})["status"] == "ok" and len(calls) == 2
    c, calls = _client([httpx.RemoteProtocolError("dropped", request=req), _ok()])
    with pytest.raises(ApiError) as info:
        c.request("POST", "/api/x", dict, body={})
    assert info.value.status == 0 and len(calls) == 1 and info.value.exit_code == 5
    c, calls = _client([httpx.ReadTimeout("slow", request=req), _ok()])
    assert c.health().status == "ok" and len(calls) == 2


def test_attempts_and_retry_after_are_bounded():
    c, calls = _client([httpx.Response(503)] * 10)
    with pytest.raises(ApiError):
        c.health()
    assert len(calls) == FAST.attempts
    # A Retry-After longer than max_retry_after is not slept on: the error comes at once.
    c, calls = _client([httpx.Response(429, headers={"Retry-After": "3600"}), _ok()])
    started = time.monotonic()
    with pytest.raises(ApiError) as info:
        c.health()
    assert info.value.status == 429 and len(calls) == 1 and time.monotonic() - started < 1
    # And no retry starts past the total budget.
    budget = RetryPolicy(attempts=100, total_seconds=0.05, backoff=0.02, max_backoff=0.02)
    c, calls = _client([httpx.Response(503)] * 100, budget)
    with pytest.raises(ApiError):
        c.health()
    assert 1 < len(calls) < 10


def test_retry_after_forms_and_exit_codes():
    assert parse_retry_after("7") == 7 and parse_retry_after("") is None and parse_retry_after("soon") is None
    assert 0 <= parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") <= 0.001  # a past date: now
    assert [ApiError(s, "x").exit_code for s in (400, 401, 403, 404, 409, 500, 503)] == [1, 3, 3, 4, 1, 5, 5]
    assert ApiError(0, "gave up waiting for job j").exit_code == 6


def test_profiles_file_is_0600_round_trips_and_escapes(tmp_path):
    path = tmp_path / "stage1" / "config.toml"
    nasty = 'tok"en\\with\nnewline'
    save_profile("prod", "https://api.example/", nasty, path)
    save_profile("default", "http://127.0.0.1:3117", "t2", path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_profiles(path) == {"prod": {"url": "https://api.example", "token": nasty},
                                   "default": {"url": "http://127.0.0.1:3117", "token": "t2"}}
    with pytest.raises(ConfigError):
        dump_profiles({"bad name]": {"url": "x"}})
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_profiles(path)


def test_precedence_flag_env_profile_local_stack(tmp_path):
    env_file = tmp_path / "stage1.env"
    env_file.write_text("STAGE1_GATEWAY_URL=http://local:3000\nSTAGE1_TOKEN=local-token\n")
    home = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "STAGE1_ENV_FILE": str(env_file)}
    assert resolve(environ=home) == resolve(environ=home)
    assert (resolve(environ=home).url, resolve(environ=home).token) == ("http://local:3000", "local-token")
    save_profile("default", "https://default.example", "default-token", tmp_path / "cfg" / "stage1" / "config.toml")
    save_profile("prod", "https://prod.example", "prod-token", tmp_path / "cfg" / "stage1" / "config.toml")
    r = resolve(environ=home)
    assert (r.url, r.token, r.source) == ("https://default.example", "default-token", "profile default")
    r = resolve(environ={**home, "STAGE1_PROFILE": "prod"})
    assert (r.url, r.token) == ("https://prod.example", "prod-token")
    r = resolve(profile="default", environ={**home, "STAGE1_PROFILE": "prod"})  # the flag beats the env
    assert r.url == "https://default.example"
    r = resolve(environ={**home, "STAGE1_URL": "https://env.example"})
    assert (r.url, r.token, r.source) == ("https://env.example", "", "env")  # no profile token to another URL
    r = resolve(url="https://flag.example", token="flag-token", environ={**home, "STAGE1_URL": "https://env.example"})
    assert (r.url, r.token, r.source) == ("https://flag.example", "flag-token", "flag")
    with pytest.raises(ConfigError, match="no profile"):
        resolve(profile="missing", environ=home)
