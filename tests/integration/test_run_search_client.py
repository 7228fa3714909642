"""client.runs.search / search_iter, client.simulations.search and `stage1 runs search` /
`stage1 simulations search` against the gateway, over a small seeded dataset (search_support)."""

from __future__ import annotations

import json
import subprocess

import pytest
from client_support import STAGE1, cli_env
from search_support import drop, seed

from stage1_client import ApiError, Client


@pytest.fixture(scope="module")
def seeded():
    data = seed(250, n_simulations=30)
    try:
        yield data
    finally:
        drop(data)


def _top(seeded, n: int) -> list[str]:
    numbers = [r for r in seeded.runs if isinstance(r["summary_metrics"].get("sharpe"), float)]
    ranked = sorted(numbers, key=lambda r: (-r["summary_metrics"]["sharpe"], r["run_id"].int))
    return [str(r["run_id"]) for r in ranked[:n]]


def test_client_search_and_search_iter(gateway_url, api_token, seeded):
    own = f"dataset_slug = '{seeded.slug}'"
    with Client(gateway_url, api_token) as c:
        page = c.runs.search(filter=own, sort="-summary_metrics.sharpe", limit=10)
        assert [str(r.run_id) for r in page.runs] == _top(seeded, 10)
        assert page.total == 250 and page.next_cursor
        nxt = c.runs.search(filter=own, sort="-summary_metrics.sharpe", limit=10, cursor=page.next_cursor)
        assert [str(r.run_id) for r in nxt.runs] == _top(seeded, 20)[10:]
        every = [str(r.run_id) for r in c.runs.search_iter(filter=own, sort="-summary_metrics.sharpe", page=33)]
        assert len(every) == len(set(every)) == 250 and every[:20] == _top(seeded, 20)
        sims = c.simulations.search(filter=f"{own} and config.side = 'long'", sort="-summary_metrics.pnl")
        assert sims.total == sum(1 for s in seeded.simulations if s["config"]["side"] == "long")
        with pytest.raises(ApiError) as bad:
            c.runs.search(filter="summary_metrics.sharpe >")
        assert bad.value.status == 400 and bad.value.details["position"] == 24


def test_cli_runs_search(gateway_url, api_token, seeded):
    env = cli_env(gateway_url, api_token)
    own = f"dataset_slug = '{seeded.slug}'"
    args = ["runs", "search", "--filter", own, "--sort=-summary_metrics.sharpe", "--limit", "5"]
    out = subprocess.run([STAGE1, "--json", *args], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert [r["run_id"] for r in body["runs"]] == _top(seeded, 5) and body["next_cursor"]
    table = subprocess.run([STAGE1, *args], capture_output=True, text=True, timeout=60, env={**env, "COLUMNS": "250"})
    assert table.returncode == 0, table.stderr
    assert "5 of 250 matching" in table.stdout and "--cursor" in table.stdout
    assert _top(seeded, 1)[0][:8] in table.stdout
    bad = subprocess.run([STAGE1, "runs", "search", "--filter", "bogus = 1"], capture_output=True, text=True,
                         timeout=60, env=env)
    assert bad.returncode == 1 and "unknown field" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    sims = subprocess.run([STAGE1, "--json", "simulations", "search", "--filter", own, "--limit", "3"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert sims.returncode == 0 and json.loads(sims.stdout)["total"] == 30, sims.stderr
