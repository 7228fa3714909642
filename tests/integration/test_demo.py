"""`make demo` as CI runs it: the demo module in a subprocess against the gateway, with the test token."""

from __future__ import annotations

import subprocess
import sys

from client_support import cli_env


def test_demo_passes_end_to_end(gateway_url, api_token):
    r = subprocess.run([sys.executable, "-m", "stage1_local.demo", "--cleanup", "--timeout", "45"],
                       capture_output=True, text=True, timeout=60, env=cli_env(gateway_url, api_token))
    assert r.returncode == 0, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    out = r.stdout
    for step in ("[1] Create the dataset", "[2] Upload", "[3] Save a walk-forward run", "[4] Load the run",
                 "[5] Save a simulation"):
        assert step in out
    assert "ok: ohlcv import COMPLETED with 3,000 rows" in out
    assert "ok: QuestDB holds exactly the uploaded rows" in out
    assert "ok: the CSV download has every prediction" in out
    assert "ok: the 'all' bucket counts every trade" in out
    assert "cleaned up: dataset demo_" in out
    assert "Demo passed in" in out


def test_demo_fails_with_exit_1_on_an_api_error(gateway_url):
    r = subprocess.run([sys.executable, "-m", "stage1_local.demo"], capture_output=True, text=True, timeout=60,
                       env=cli_env(gateway_url, "s1_not_a_valid_token"))
    assert r.returncode == 1
    assert "DEMO FAILED: 401" in r.stderr
