"""Big backtests (issue 13): POST /api/simulations with `trades_upload_id`. The trades travel the real
upload pipeline (presigned POST to MinIO → its event → the import job), the simulation is RUNNING
(trades, equity answer 409 with the job's poll_url) until the import ends and the trades are loaded
into Postgres, then COMPLETED with buckets equal to those computed here from the same trades."""

from __future__ import annotations

import random
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime

import httpx
import pytest
from resources_support import HOUR, START, assert_envelope, dataset
from test_runs_from_upload import _send, _wait_job  # the same presigned POST + nudge, and job polling

from stage1.core import db
from stage1.simulations import from_upload

N_TRADES = 200_000


def _trades(n: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        entry = 100 + rng.random() * 10
        pnl = round(rng.gauss(0.1, 5), 6)
        out.append({"timestamp": START + (i // 3) * HOUR, "side": "long" if rng.random() < 0.6 else "short",
                    "entry_price": round(entry, 6), "exit_price": round(entry + pnl, 6), "quantity": 1.0, "pnl": pnl,
                    "return_pct": None if i % 11 == 0 else round(pnl / entry * 100, 6), "signal": i % 5})
    return out


def _csv(rows: list[dict], columns: list[str]) -> bytes:
    lines = [",".join(columns)]
    lines += [",".join("" if r.get(c) is None else str(r[c]) for c in columns) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def _expected_buckets(trades: list[dict]) -> dict[tuple[str, str], dict]:
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for t in trades:
        month = datetime.fromtimestamp(t["timestamp"], UTC).strftime("%Y-%m")
        for key in (("all", "all"), ("side", t["side"]), ("month", month)):
            groups[key].append(t)
    out = {}
    for key, ts in groups.items():
        wins = sum(1 for t in ts if t["pnl"] > 0)
        returns = [t["return_pct"] for t in ts if t["return_pct"] is not None]
        out[key] = {"trade_count": len(ts), "win_count": wins, "win_rate": wins / len(ts),
                    "total_pnl": sum(t["pnl"] for t in ts), "mean_pnl": sum(t["pnl"] for t in ts) / len(ts),
                    "mean_return_pct": sum(returns) / len(returns) if returns else None}
    return out


def _upload(client: httpx.Client, data: bytes) -> dict:
    r = client.post("/api/uploads", json={"filename": "trades.csv", "size": len(data), "kind": "trades",
                                          "measurement": f"trades_{uuid.uuid4().hex[:12]}", "content_type": "text/csv"})
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
def ds(client):
    with dataset(client, f"bigsim_{uuid.uuid4().hex[:10]}") as body:
        yield body


def test_a_200k_trade_backtest_through_the_upload_pipeline(client, ds):
    trades = _trades(N_TRADES)
    data = _csv(trades, ["timestamp", "side", "entry_price", "exit_price", "quantity", "pnl", "return_pct", "signal"])
    upload = _upload(client, data)
    # created before the file is even sent: RUNNING, linked to the import job, never half-visible
    r = client.post("/api/simulations", json={"dataset_id": ds["dataset_id"], "name": "big",
                                              "trades_upload_id": upload["upload_id"]})
    assert r.status_code == 202, r.text
    sim = r.json()
    assert sim["status"] == "RUNNING" and sim["buckets"] == [] and sim["trade_count"] == 0
    sid = sim["simulation_id"]
    refused = assert_envelope(client.get(f"/api/simulations/{sid}/trades"), 409)
    assert refused["details"]["status"] == "RUNNING"
    assert refused["details"]["poll_url"] == f"/api/jobs/{upload['job_id']}"
    assert_envelope(client.get(f"/api/simulations/{sid}/trades", params={"format": "csv"}), 409)
    started = time.monotonic()
    _send(client, upload, data)
    job = _wait_job(client, upload["job_id"])
    assert job["status"] == "COMPLETED", job
    # one batch, then a pause (as a request out of time would): still RUNNING, no buckets; the next call resumes
    from_upload.settle(uuid.UUID(sid), seconds=0)
    with db.connection() as conn:
        partial = conn.execute("select count(*) as n from simulation_trades where simulation_id = %s",
                               (sid,)).fetchone()["n"]
        state = conn.execute("select status, (select count(*) from simulation_trade_buckets b where "
                             "b.simulation_id = s.simulation_id) as buckets from simulation_runs s "
                             "where simulation_id = %s", (sid,)).fetchone()
    if 0 < partial < N_TRADES:  # this call had the lease (not a sweeper)
        assert state["status"] == "RUNNING" and state["buckets"] == 0
    detail = None
    while time.monotonic() - started < 240:  # the read settles it (or the sweeper did already)
        detail = client.get(f"/api/simulations/{sid}").json()
        if detail["status"] != "RUNNING":
            break
        time.sleep(0.5)
    print(f"\n200k trades: upload + import + load in {time.monotonic() - started:.1f} s")
    assert detail["status"] == "COMPLETED", detail
    assert detail["trade_count"] == N_TRADES
    with db.connection() as conn:
        stored = conn.execute("select count(*) as n from simulation_trades where simulation_id = %s",
                              (sid,)).fetchone()["n"]
    assert stored == N_TRADES
    expected = _expected_buckets(trades)
    got = {(b["bucket_type"], b["bucket_key"]): b for b in detail["buckets"]}
    assert set(got) == set(expected)
    for key, want in expected.items():
        for field, value in want.items():
            assert got[key][field] == pytest.approx(value, rel=1e-9, abs=1e-9), (key, field)
    # paging: first page, a middle page and the last page in (bar_timestamp, trade_index) order
    first = client.get(f"/api/simulations/{sid}/trades", params={"limit": 1000}).json()
    assert first["total"] == N_TRADES and len(first["trades"]) == 1000 and first["next_offset"] == 1000
    assert [t["pnl"] for t in first["trades"]] == [t["pnl"] for t in trades[:1000]]
    assert first["trades"][0]["extra"] == {"signal": 0.0} and first["trades"][0]["return_pct"] is None
    middle = client.get(f"/api/simulations/{sid}/trades", params={"limit": 500, "offset": 100_000}).json()
    assert [t["trade_index"] for t in middle["trades"]] == list(range(100_000, 100_500))
    last = client.get(f"/api/simulations/{sid}/trades", params={"limit": 1000, "offset": N_TRADES - 300}).json()
    assert len(last["trades"]) == 300 and last["next_offset"] is None
    assert [t["side"] for t in last["trades"]] == [t["side"] for t in trades[-300:]]
    client.delete(f"/api/simulations/{sid}")


def test_trades_without_required_columns_are_refused_naming_them(client, ds):
    data = _csv(_trades(50), ["timestamp", "side", "entry_price", "exit_price", "quantity"])  # no pnl
    upload = _upload(client, data)
    _send(client, upload, data)
    job = _wait_job(client, upload["job_id"], timeout=60)
    assert job["status"] == "FAILED" and "pnl" in job["error"]
    body = assert_envelope(client.post("/api/simulations", json={"dataset_id": ds["dataset_id"],
                                                                 "trades_upload_id": upload["upload_id"]}), 400)
    assert "pnl" in body["details"]["missing_columns"]


def test_a_simulation_whose_import_fails_later_is_failed(client, ds):
    data = _csv(_trades(50), ["timestamp", "side", "entry_price", "exit_price", "quantity"])  # no pnl
    upload = _upload(client, data)
    r = client.post("/api/simulations", json={"dataset_id": ds["dataset_id"], "trades_upload_id": upload["upload_id"]})
    assert r.status_code == 202, r.text
    sid = r.json()["simulation_id"]
    _send(client, upload, data)
    assert _wait_job(client, upload["job_id"], timeout=60)["status"] == "FAILED"
    detail = client.get(f"/api/simulations/{sid}").json()
    assert detail["status"] == "FAILED" and "pnl" in detail["error"]
    assert_envelope(client.get(f"/api/simulations/{sid}/trades"), 409)
    client.delete(f"/api/simulations/{sid}")


def test_bad_trades_upload_references(client, ds):
    assert_envelope(client.post("/api/simulations", json={"dataset_id": ds["dataset_id"],
                                                          "trades_upload_id": str(uuid.uuid4())}), 409)
    data = _csv(_trades(5), ["timestamp", "side", "entry_price", "exit_price", "quantity", "pnl"])
    upload = _upload(client, data)
    both = {"dataset_id": ds["dataset_id"], "trades_upload_id": upload["upload_id"],
            "trades": [{"bar_timestamp": START, "side": "long", "pnl": 1.0}]}
    assert_envelope(client.post("/api/simulations", json=both), 400)
    pred = client.post("/api/uploads", json={"filename": "p.csv", "size": 10, "kind": "predictions",
                                             "measurement": f"p_{uuid.uuid4().hex[:12]}", "content_type": "text/csv"})
    assert pred.status_code == 201, pred.text
    assert_envelope(client.post("/api/simulations", json={"dataset_id": ds["dataset_id"],
                                                          "trades_upload_id": pred.json()["upload_id"]}), 400)


def test_the_client_creates_a_simulation_from_a_trades_file(gateway_url, api_token, ds, tmp_path):
    from stage1_client import Client

    trades = _trades(3000, seed=11)
    path = tmp_path / "trades.csv"
    path.write_bytes(_csv(trades, ["timestamp", "side", "entry_price", "exit_price", "quantity", "pnl",
                                   "return_pct"]))
    with Client(gateway_url, api_token) as c:
        sim = c.simulations.create({"dataset_id": ds["dataset_id"], "name": "from file"}, trades_path=path,
                                   timeout=120)
        assert sim.status == "COMPLETED" and sim.trade_count == 3000
        everything = next(b for b in sim.buckets if b.bucket_type == "all")
        assert everything.total_pnl == pytest.approx(sum(t["pnl"] for t in trades), rel=1e-9)
        c.simulations.delete(sim.simulation_id)
