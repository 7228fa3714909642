"""Simulations through the gateway against the real Postgres (issue 3): trades round trip and the
server's trade buckets checked against an independent computation."""

from __future__ import annotations

import csv
import io
import json
import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime

import pytest
from resources_support import HOUR, START, assert_envelope, dataset

N_TRADES = 640
SIM_FIELDS = {"simulation_id", "run_id", "dataset_id", "name", "status", "config", "summary_metrics", "trade_count",
              "started_at", "completed_at", "created_at", "updated_at", "buckets", "links"}
TRADE_FIELDS = ["trade_index", "bar_timestamp", "side", "entry_price", "exit_price", "quantity", "pnl", "return_pct",
                "extra"]


def make_trades(n: int, seed: int = 11) -> list[dict]:
    """Trades over ~7 months, three sides, several sharing a bar, some without return_pct, posted
    out of time order (the API orders them by time)."""
    rng = random.Random(seed)
    trades = []
    for i in range(n):
        entry = rng.uniform(30_000, 50_000)
        exit_ = entry * (1 + rng.uniform(-0.03, 0.03))
        qty = round(rng.uniform(0.01, 2), 4)
        side = rng.choice(["long", "short", "long", "flat"])
        pnl = (exit_ - entry) * qty * (-1 if side == "short" else 1)
        if i % 50 == 0:
            pnl = 0.0  # not a win
        trades.append({
            "bar_timestamp": START + rng.randrange(0, 5000) * HOUR, "side": side, "entry_price": entry,
            "exit_price": exit_, "quantity": qty, "pnl": pnl,
            "return_pct": None if i % 7 == 0 else (exit_ / entry - 1) * 100,
            "extra": {"bars_held": rng.randint(1, 40), "exit_reason": rng.choice(["tp", "sl", "time"])},
        })
    return trades


def expected_buckets(trades: list[dict]) -> dict[tuple[str, str], dict]:
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for t in trades:
        month = datetime.fromtimestamp(t["bar_timestamp"], UTC).strftime("%Y-%m")
        for key in (("all", "all"), ("side", t["side"]), ("month", month)):
            groups[key].append(t)
    out = {}
    for key, items in groups.items():
        wins = sum(1 for t in items if t["pnl"] > 0)
        returns = [t["return_pct"] for t in items if t["return_pct"] is not None]
        total = sum(t["pnl"] for t in items)
        out[key] = {"trade_count": len(items), "win_count": wins, "win_rate": wins / len(items), "total_pnl": total,
                    "mean_pnl": total / len(items), "mean_return_pct": sum(returns) / len(returns) if returns else None}
    return out


@pytest.fixture
def run(client, unique):
    with dataset(client, f"t3sm_{unique}") as ds:
        r = client.post("/api/runs", json={"dataset_id": ds["dataset_id"], "folds": [{"fold_number": 0}]})
        assert r.status_code == 201, r.text
        yield ds, r.json()


@pytest.fixture
def sim(client, run):
    ds, created_run = run
    trades = make_trades(N_TRADES)
    body = {"run_id": created_run["run_id"], "name": "threshold 0.6 long/short",
            "config": {"fee_bps": 5, "slippage": 0.0002, "sizing": {"kind": "fixed", "qty": 1}},
            "summary_metrics": {"sharpe": 1.7, "max_dd": -0.12}, "started_at": "2024-05-01T00:00:00Z",
            "completed_at": 1714521600, "trades": trades}
    r = client.post("/api/simulations", json=body)
    assert r.status_code == 201, r.text
    yield ds, created_run, body, r.json()
    client.delete(f"/api/simulations/{r.json()['simulation_id']}")


def test_simulation_round_trip_and_buckets(client, sim):
    ds, created_run, body, created = sim
    assert set(created) >= SIM_FIELDS
    detail = client.get(f"/api/simulations/{created['simulation_id']}").json()
    assert detail == created
    assert detail["run_id"] == created_run["run_id"] and detail["dataset_id"] == ds["dataset_id"]
    assert detail["config"] == body["config"] and detail["summary_metrics"] == body["summary_metrics"]
    assert detail["name"] == body["name"] and detail["trade_count"] == N_TRADES and detail["status"] == "COMPLETED"
    assert detail["started_at"] == "2024-05-01T00:00:00Z" and detail["completed_at"] == "2024-05-01T00:00:00Z"

    want = expected_buckets(body["trades"])
    got = {(b["bucket_type"], b["bucket_key"]): b for b in detail["buckets"]}
    assert set(got) == set(want)
    assert len([k for k in got if k[0] == "month"]) >= 6
    for key, exp in want.items():
        b = got[key]
        assert (b["trade_count"], b["win_count"]) == (exp["trade_count"], exp["win_count"]), key
        for field in ("win_rate", "total_pnl", "mean_pnl", "mean_return_pct"):
            assert b[field] == pytest.approx(exp[field], rel=1e-9, abs=1e-9), (key, field)
    assert [b["bucket_type"] for b in detail["buckets"]][0] == "all"


def test_trades_json_and_csv_ordered_by_time(client, sim):
    _, _, body, created = sim
    indexed = [{"trade_index": i, **t} for i, t in enumerate(body["trades"])]
    ordered = sorted(indexed, key=lambda t: (t["bar_timestamp"], t["trade_index"]))
    url = f"/api/simulations/{created['simulation_id']}/trades"
    got, offset = [], 0
    while offset is not None:
        page = client.get(url, params={"limit": 250, "offset": offset}).json()
        assert page["total"] == N_TRADES and set(page) == {"simulation_id", "trades", "total", "limit", "offset",
                                                          "next_offset"}
        got += page["trades"]
        offset = page["next_offset"]
    assert got == ordered  # value by value, floats exact, extra kept

    r = client.get(url, params={"format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(r.text)))
    assert lines[0] == TRADE_FIELDS and len(lines) == N_TRADES + 1
    for line, t in zip(lines[1:], ordered, strict=True):
        assert int(line[0]) == t["trade_index"] and int(line[1]) == t["bar_timestamp"] and line[2] == t["side"]
        for pos, key in enumerate(TRADE_FIELDS[3:8], start=3):
            assert (line[pos] == "" and t[key] is None) or float(line[pos]) == t[key], key
        assert json.loads(line[8]) == t["extra"]

    shorts = client.get(url, params={"side": "short", "limit": 1000}).json()
    assert shorts["trades"] == [t for t in ordered if t["side"] == "short"]
    lo, hi = ordered[100]["bar_timestamp"], ordered[200]["bar_timestamp"]
    window = client.get(url, params={"from": lo, "to": hi, "limit": 1000}).json()
    assert window["trades"] == [t for t in ordered if lo <= t["bar_timestamp"] <= hi]
    few = client.get(url, params={"format": "csv", "limit": 3, "offset": 10}).text.splitlines()
    assert [int(x.split(",")[0]) for x in few[1:]] == [t["trade_index"] for t in ordered[10:13]]


def test_list_filters(client, sim, unique):
    ds, created_run, _, created = sim
    by_run = client.get("/api/simulations", params={"run_id": created_run["run_id"]}).json()
    assert set(by_run) == {"simulations", "total", "limit", "offset", "next_cursor"}
    assert [s["simulation_id"] for s in by_run["simulations"]] == [created["simulation_id"]]
    assert "buckets" not in by_run["simulations"][0]
    by_dataset = client.get("/api/simulations", params={"dataset_id": ds["dataset_slug"]}).json()
    assert by_dataset["total"] == 1
    assert client.get(f"/api/datasets/{ds['dataset_id']}/simulations").json()["total"] == 1
    assert client.get(f"/api/datasets/{ds['dataset_id']}").json()["related_simulations"] == 1
    assert client.get("/api/simulations", params={"run_id": str(uuid.uuid4())}).json()["total"] == 0


def test_dataset_only_simulation_and_empty_trades(client, run):
    ds, _ = run
    r = client.post("/api/simulations", json={"dataset_id": ds["dataset_slug"], "name": "no trades"})
    assert r.status_code == 201, r.text
    created = r.json()
    try:
        assert created["run_id"] is None and created["trade_count"] == 0 and created["buckets"] == []
        assert created["links"]["run"] is None
        trades = client.get(f"/api/simulations/{created['simulation_id']}/trades").json()
        assert trades["trades"] == [] and trades["total"] == 0
    finally:
        client.delete(f"/api/simulations/{created['simulation_id']}")


def test_conflicts_and_not_found(client, run, unique):
    ds, created_run = run
    trade = {"bar_timestamp": START, "side": "long", "pnl": 1.0}
    assert_envelope(client.post("/api/simulations", json={"run_id": str(uuid.uuid4()), "trades": [trade]}), 409)
    assert_envelope(client.post("/api/simulations", json={"dataset_id": str(uuid.uuid4())}), 409)
    assert_envelope(client.post("/api/simulations", json={"dataset_id": f"nope_{unique}"}), 409)
    with dataset(client, f"t3sx_{unique}") as other:
        assert_envelope(client.post("/api/simulations", json={"run_id": created_run["run_id"],
                                                              "dataset_id": other["dataset_id"]}), 409)
    sim_id = str(uuid.uuid4())
    first = client.post("/api/simulations", json={"simulation_id": sim_id, "dataset_id": ds["dataset_id"]})
    assert first.status_code == 201
    assert_envelope(client.post("/api/simulations", json={"simulation_id": sim_id, "dataset_id": ds["dataset_id"]}),
                    409)
    deleted = client.delete(f"/api/simulations/{sim_id}")
    assert deleted.json() == {"simulation_id": sim_id, "deleted": True, "trades_deleted": 0}
    missing = uuid.uuid4()
    assert_envelope(client.get(f"/api/simulations/{missing}"), 404)
    assert_envelope(client.get(f"/api/simulations/{missing}/trades"), 404)
    assert_envelope(client.get(f"/api/simulations/{missing}/trades", params={"format": "csv"}), 404)
    assert_envelope(client.delete(f"/api/simulations/{missing}"), 404)


def test_trade_pages_are_bounded_by_bytes(client, run):
    """A trade's `extra` is the client's JSON: 60 trades of ~100 KB each is a 6 MB page by rows, so the
    page stops at the byte cap (queries.page_max_bytes, 4 MiB) and next_offset pages on; every trade
    comes back exactly once, in order."""
    _, created_run = run
    trades = [{"bar_timestamp": START + i * HOUR, "side": "long", "entry_price": 1.0, "exit_price": 1.1,
               "quantity": 1.0, "pnl": 0.1, "extra": {"note": f"{i:04d}" + "x" * 100_000}} for i in range(60)]
    r = client.post("/api/simulations", json={"run_id": created_run["run_id"], "trades": trades})
    assert r.status_code == 201, r.text
    url = f"/api/simulations/{r.json()['simulation_id']}/trades"
    seen, offset, pages = [], 0, 0
    while offset is not None:
        page = client.get(url, params={"limit": 1000, "offset": offset})
        assert page.status_code == 200, page.text
        assert len(page.content) <= 4 * 1024 * 1024 + 64 * 1024  # the cap plus the page's envelope
        body = page.json()
        assert body["total"] == 60 and body["trades"]
        seen += [t["extra"]["note"][:4] for t in body["trades"]]
        offset, pages = body["next_offset"], pages + 1
    assert seen == [f"{i:04d}" for i in range(60)] and pages >= 2


def test_simulation_list_pages_are_bounded_by_bytes(client, run):
    """A simulation's config is the client's JSON (up to the 10 MB body): six of ~900 KB each do not fit
    one 4 MiB page, so the list ends early with a cursor, and paging on gives each exactly once."""
    _, created_run = run
    made = []
    for i in range(6):
        r = client.post("/api/simulations", json={"run_id": created_run["run_id"], "name": f"wide {i}",
                                                  "config": {"blob": "y" * 900_000}, "trades": []})
        assert r.status_code == 201, r.text
        made.append(r.json()["simulation_id"])
    seen, cursor, pages = [], None, 0
    while True:
        params = {"run_id": created_run["run_id"], "limit": 100, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/simulations", params=params)
        assert page.status_code == 200, page.text
        assert len(page.content) <= 4 * 1024 * 1024 + 1024 * 1024  # the cap plus at most one row
        body = page.json()
        assert body["total"] == 6
        seen += [s["simulation_id"] for s in body["simulations"]]
        pages += 1
        if (cursor := body["next_cursor"]) is None:
            break
    assert sorted(seen) == sorted(made) and len(seen) == 6 and pages >= 2
