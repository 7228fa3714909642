"""Private gateways started with their own settings, and token issue from a chosen source address.

A private gateway runs the code of the working tree (the shared :3000 one runs the code as of its
start). Per-source limits are tested from loopback addresses other than 127.0.0.1: the gateway keys
them on the socket peer, as API Gateway keys them on `sourceIp`, so no test-only header exists that
a deployment could be tricked with. The token-issue limits live in Postgres and outlast a gateway,
so a test takes fresh addresses (`fresh_source`) instead of fixed ones a rerun would find spent."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def private_gateway(*, healthy: bool = True, **env: str) -> Iterator[str]:
    """A gateway on a free port with `STAGE1_<NAME>=value` for each keyword; its URL. `healthy=False`
    waits for any answer of /api/health instead of a 200 (a gateway whose Postgres is unreachable)."""
    port = free_port()
    environ = {**os.environ, **{f"STAGE1_{k.upper()}": v for k, v in env.items()}}
    proc = subprocess.Popen([sys.executable, "-m", "stage1_local.gateway", "--port", str(port)], cwd=REPO,
                            env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"private gateway exited: {proc.stderr.read().decode()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/api/health", timeout=10).status_code == 200 or not healthy:
                    break
            if time.monotonic() > deadline:
                pytest.fail("private gateway not healthy after 60 s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def fresh_source() -> str:
    """A loopback address no earlier run used (127.0.0.1 is everyone's; 127.0.1.x the hostile corpus's)."""
    a, b, c = secrets.randbelow(240) + 10, secrets.randbelow(256), secrets.randbelow(254) + 1
    return f"127.{a}.{b}.{c}"


def issue_from(url: str, source: str, secret: str | None = None, headers: dict[str, str] | None = None,
               ) -> httpx.Response:
    """POST /api/auth/token from `source` (the socket peer) with the admin secret and/or other headers."""
    sent = dict(headers or {})
    if secret is not None:
        sent["X-Stage1-Admin-Secret"] = secret
    with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=30) as c:
        return c.post(f"{url}/api/auth/token", json={"name": "limits", "scopes": ["read"], "expires_in": 60},
                      headers=sent)
