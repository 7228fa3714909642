"""End-to-end tests of the web client in Debian's headless Chromium (functions/web/ui/e2e/run.mjs,
playwright-core) against the gateway: sign in, create a dataset, upload a file through the page and
see its candles (its first POST to the bucket dropped by the network: the page retries it), a CSV
in chunks (the threshold lowered by the page's query string) with the dataset's row count equal to
the file's, a chunked upload cut off after 3 chunks and resumed after a reload
(only the missing chunks sent), a run's folds and predictions, compare two runs, a simulation, a query
and its export, the 401 page, a 390 px window, no console errors. `make test` installs chromium and
builds the app first."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

UI = Path(__file__).resolve().parents[2] / "functions" / "web" / "ui"


def test_web_client_end_to_end(gateway_url, settings):
    for need, hint in ((shutil.which("node"), "node"), (Path("/usr/bin/chromium").exists(), "make chromium"),
                       ((UI / "node_modules" / "playwright-core").exists(), "make web-deps"),
                       ((UI.parent / "dist" / "stage1-manifest.json").exists(), "make web")):
        if not need:
            pytest.fail(f"the web e2e needs: {hint}")
    # A read+write token, as a researcher would paste (never the admin secret in the browser).
    r = httpx.post(f"{gateway_url}/api/auth/token", headers={"X-Stage1-Admin-Secret": settings.auth.admin_secret},
                   json={"name": f"web-e2e-{uuid.uuid4().hex[:8]}", "scopes": ["read", "write"], "expires_in": 3600},
                   timeout=30)
    assert r.status_code == 201, r.text
    env = dict(os.environ, STAGE1_GATEWAY_URL=gateway_url, STAGE1_E2E_TOKEN=r.json()["token"])
    args = ["node", "e2e/run.mjs"]
    if shots := os.environ.get("STAGE1_WEB_SHOTS"):
        args += ["--shots", shots]
    done = subprocess.run(args, cwd=UI, env=env, capture_output=True, text=True, timeout=150)
    summary = [line for line in done.stdout.splitlines() if line.startswith("e2e:")]
    assert done.returncode == 0 and summary, done.stdout[-4000:] + done.stderr[-2000:]
    assert summary[-1].endswith(" 0 failed"), done.stdout[-4000:]
