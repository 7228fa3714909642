"""The older backend's read paths (Stage 1.3 report, seed 001) through the gateway: each alias
answers what its successor answers (the same service), carries `Deprecation: true` and a
`rel="successor-version"` Link, needs the same token, and is `deprecated: true` in the spec.
The older lists were bare JSON arrays: the alias list is the successor's items, total in a header."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from resources_support import START, assert_envelope, dataset

from stage1_local.openapi import merged_spec

ALIASES = {  # alias -> successor (GET)
    "/api/indicators/datasets": "/api/datasets",
    "/api/indicators/datasets/{dataset_id}": "/api/datasets/{dataset_id}",
    "/api/walkforward/runs": "/api/runs",
    "/api/walkforward/runs/{run_id}": "/api/runs/{run_id}",
    "/api/tradesim/runs": "/api/simulations",
    "/api/tradesim/runs/{simulation_id}": "/api/simulations/{simulation_id}",
}
LISTS = {"/api/indicators/datasets": ("/api/datasets", "datasets"), "/api/walkforward/runs": ("/api/runs", "runs"),
         "/api/tradesim/runs": ("/api/simulations", "simulations")}


@pytest.fixture(scope="module")
def seeded(gateway_url, api_headers):
    with httpx.Client(base_url=gateway_url, headers=api_headers, timeout=60) as c, \
            dataset(c, f"alias_{uuid.uuid4().hex[:10]}") as ds:
        r = c.post("/api/runs", json={"dataset_id": ds["dataset_id"], "target_column": "y",
                                      "hyperparameters": {"max_depth": 4}, "summary_metrics": {"sharpe": 1.1},
                                      "folds": [{"fold_number": 0, "metrics": {"auc": 0.55}},
                                                {"fold_number": 1, "metrics": {"auc": 0.57}}]})
        assert r.status_code == 201, r.text
        run_id = r.json()["run_id"]
        trades = [{"bar_timestamp": START + i * 3600, "side": "long" if i % 2 else "short", "pnl": i - 2.5}
                  for i in range(6)]
        r = c.post("/api/simulations", json={"run_id": run_id, "name": "alias", "trades": trades})
        assert r.status_code == 201, r.text
        yield {"dataset_id": ds["dataset_id"], "run_id": run_id, "simulation_id": r.json()["simulation_id"]}


def _deprecated(r: httpx.Response, successor: str) -> None:
    assert r.headers["deprecation"] == "true"
    assert f'<{successor}>; rel="successor-version"' in r.headers["link"]


@pytest.mark.parametrize(("alias", "successor", "key"), [
    ("/api/indicators/datasets/{}", "/api/datasets/{}", "dataset_id"),
    ("/api/walkforward/runs/{}", "/api/runs/{}", "run_id"),
    ("/api/tradesim/runs/{}", "/api/simulations/{}", "simulation_id"),
])
def test_detail_alias_is_its_successor(client, seeded, alias, successor, key):
    ref = seeded[key]
    old, new = client.get(alias.format(ref)), client.get(successor.format(ref))
    assert old.status_code == new.status_code == 200, old.text
    assert old.json() == new.json()
    assert "deprecation" not in new.headers
    _deprecated(old, successor.format(ref))
    if key == "run_id":  # run plus folds
        assert [f["metrics"]["auc"] for f in old.json()["folds"]] == [0.55, 0.57]
    if key == "simulation_id":  # simulation plus buckets
        assert old.json()["buckets"] and old.json()["trade_count"] == 6
    # the same errors as the successor: an unknown id 404, a bad one 400
    if key != "dataset_id":
        assert_envelope(client.get(alias.format(uuid.uuid4())), 404)
        assert_envelope(client.get(alias.format("not-a-uuid")), 400)
    else:
        assert_envelope(client.get(alias.format(f"nope_{uuid.uuid4().hex[:8]}")), 404)


@pytest.mark.parametrize("alias", list(LISTS))
def test_list_alias_is_the_successors_items_as_an_array(client, seeded, alias):
    successor, items = LISTS[alias]
    for _ in range(5):  # the shared stack: others may add rows between the two reads
        old = client.get(alias, params={"limit": 3})
        new = client.get(successor, params={"limit": 3})
        assert old.status_code == new.status_code == 200, old.text
        if old.json() == new.json()[items] and int(old.headers["x-total-count"]) == new.json()["total"]:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"{alias} never answered what {successor} answers")
    assert isinstance(old.json(), list) and len(old.json()) == min(3, new.json()["total"])
    _deprecated(old, successor)
    if new.json()["total"] > 3:
        assert f'<{alias}?limit=3&offset=3>; rel="next"' in old.headers["link"]
    second = client.get(alias, params={"limit": 3, "offset": 3})
    assert second.status_code == 200 and isinstance(second.json(), list)
    assert_envelope(client.get(alias, params={"limit": 0}), 400)  # same bounds as the successor


def test_aliases_need_the_same_token(gateway_url, seeded):
    for alias in ALIASES:
        path = alias.format(**seeded)
        assert_envelope(httpx.get(f"{gateway_url}{path}", timeout=30), 401)


def test_spec_marks_the_aliases_deprecated():
    paths = merged_spec()["paths"]
    for alias, successor in ALIASES.items():
        op = paths[alias]["get"]
        assert op["deprecated"] is True, alias
        assert {"Deprecation", "Link"} <= set(op["responses"]["200"]["headers"]), alias
        assert not paths[successor]["get"].get("deprecated"), successor
    assert "text/csv" in paths["/api/runs/compare"]["get"]["responses"]["200"]["content"]
