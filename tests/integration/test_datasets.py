"""Datasets through the gateway against the real Postgres and QuestDB (issue 3)."""

from __future__ import annotations

import csv
import io
import uuid

import pytest
from resources_support import (
    HOUR,
    START,
    assert_envelope,
    dataset,
    drop_tables,
    indicator_rows,
    ohlcv_rows,
    table_exists,
    write_table,
)

from stage1.timeseries.kinds import Kind

CONTRACT_FIELDS = {
    "dataset_id", "dataset_slug", "symbol", "granularity", "ohlcv_measurement", "indicator_measurement",
    "ohlcv_rows", "indicator_rows", "ohlcv_first_ts", "ohlcv_last_ts", "indicator_first_ts", "indicator_last_ts",
    "metadata", "source", "created_at", "updated_at", "related_runs", "related_simulations", "questdb_state", "links",
}


@pytest.fixture
def triplet(client, unique):
    """A dataset whose OHLCV (500 bars) and indicator (480 rows, starting 20 bars later) tables were
    written to QuestDB the way the desktop does, then registered with record_questdb=true."""
    slug = f"t3ds_{unique}"
    ohlcv, ind = ohlcv_rows(500), indicator_rows(480, START + 20 * HOUR)
    write_table(Kind.OHLCV, f"{slug}_ohlcv", ohlcv)
    write_table(Kind.INDICATORS, f"{slug}_ind", ind)
    payload = {"symbol": "BTC", "granularity": "1h", "source": "desktop", "created_at": "2024-03-01T12:00:00Z",
               "metadata": {"exchange": "kraken", "features": ["rsi_14", "ema_20"], "nested": {"a": 1.5}}}
    with dataset(client, slug, **payload) as created:
        r = client.post("/api/datasets", params={"record_questdb": "true"}, json={"dataset_slug": slug})
        assert r.status_code == 200, r.text
        yield {"slug": slug, "ohlcv": ohlcv, "ind": ind, "payload": payload, "created": created, "recorded": r.json()}


def test_dataset_round_trip(client, triplet):
    slug, ohlcv, ind = triplet["slug"], triplet["ohlcv"], triplet["ind"]
    recorded = triplet["recorded"]
    assert set(recorded) >= CONTRACT_FIELDS
    assert recorded["dataset_slug"] == slug and recorded["dataset_id"] == triplet["created"]["dataset_id"]
    assert recorded["symbol"] == "BTC" and recorded["granularity"] == "1h" and recorded["source"] == "desktop"
    assert recorded["metadata"] == triplet["payload"]["metadata"]  # kept: the update did not send it
    assert recorded["created_at"] == "2024-03-01T12:00:00Z"
    assert recorded["ohlcv_measurement"] == f"{slug}_ohlcv" and recorded["indicator_measurement"] == f"{slug}_ind"
    assert (recorded["ohlcv_rows"], recorded["ohlcv_first_ts"], recorded["ohlcv_last_ts"]) == (
        500, ohlcv[0]["timestamp"], ohlcv[-1]["timestamp"])
    assert (recorded["indicator_rows"], recorded["indicator_first_ts"], recorded["indicator_last_ts"]) == (
        480, ind[0]["timestamp"], ind[-1]["timestamp"])
    assert recorded["ohlcv_row_count"] == 500 and recorded["indicator_row_count"] == 480
    state = recorded["questdb_state"]["ohlcv"]
    assert state["exists"] is True and state["row_count"] == 500 and state["designated_timestamp"] == "timestamp"
    assert (state["first_ts"], state["last_ts"]) == (ohlcv[0]["timestamp"], ohlcv[-1]["timestamp"])
    assert state["partition_by"] == "YEAR" and state["wal_enabled"] and state["dedup"]
    assert recorded["questdb_state"]["indicator"]["row_count"] == 480

    by_id = client.get(f"/api/datasets/{recorded['dataset_id']}").json()
    by_slug = client.get(f"/api/datasets/{slug}").json()
    assert by_id == by_slug
    for key in CONTRACT_FIELDS - {"updated_at", "questdb_state"}:
        assert by_id[key] == recorded[key], key
    assert by_id["links"]["runs"] == f"/api/datasets/{recorded['dataset_id']}/runs"


def test_writer_payload_is_stored_as_sent_and_upsert_keeps_omitted_fields(client, unique):
    slug = f"t3wr_{unique}"
    payload = {"dataset_slug": slug, "dataset_id": str(uuid.uuid4()), "symbol": "ETH", "granularity": "4h",
               "ohlcv_measurement": f"{slug}_bars", "indicator_measurement": f"{slug}_hm", "ohlcv_rows": 9227,
               "indicator_rows": 8143, "ohlcv_first_ts": 1704067200, "ohlcv_last_ts": 1706745600,
               "indicator_first_ts": 1704074400, "indicator_last_ts": 1706745600, "metadata": {"k": [1, 2]},
               "source": "desktop", "created_at": 1704067200, "some_future_field": {"ignored": True}}
    r = client.post("/api/datasets", json=payload)
    assert r.status_code == 201, r.text
    try:
        body = r.json()
        for key in ("dataset_slug", "dataset_id", "symbol", "granularity", "ohlcv_measurement",
                    "indicator_measurement", "ohlcv_rows", "indicator_rows", "ohlcv_first_ts", "ohlcv_last_ts",
                    "indicator_first_ts", "indicator_last_ts", "metadata", "source"):
            assert body[key] == payload[key], key
        assert body["created_at"] == "2024-01-01T00:00:00Z"
        assert body["questdb_state"]["ohlcv"]["exists"] is False
        # An update names only what changes.
        r2 = client.post("/api/datasets", json={"dataset_slug": slug, "symbol": "ETH2", "ohlcv_rows": 10})
        assert r2.status_code == 200, r2.text
        updated = r2.json()
        assert updated["symbol"] == "ETH2" and updated["ohlcv_rows"] == 10
        assert updated["granularity"] == "4h" and updated["metadata"] == {"k": [1, 2]}
        assert updated["ohlcv_measurement"] == f"{slug}_bars" and updated["created_at"] == body["created_at"]
        # The slug is bound to its dataset_id.
        clash = client.post("/api/datasets", json={"dataset_slug": slug, "dataset_id": str(uuid.uuid4())})
        assert_envelope(clash, 409)
    finally:
        client.delete(f"/api/datasets/{slug}")


def test_list_filters_and_paging(client, unique):
    slugs = [f"t3ls_{unique}_{i}" for i in range(3)]
    for i, slug in enumerate(slugs):
        r = client.post("/api/datasets", json={"dataset_slug": slug, "symbol": f"S{unique[:4]}",
                                               "granularity": "1h" if i < 2 else "1d"})
        assert r.status_code == 201
    try:
        everything = client.get("/api/datasets", params={"search": unique}).json()
        assert everything["total"] == 3 and {d["dataset_slug"] for d in everything["datasets"]} == set(slugs)
        assert all({"related_runs", "related_simulations"} <= set(d) for d in everything["datasets"])
        hourly = client.get("/api/datasets", params={"search": unique, "granularity": "1h"}).json()
        assert hourly["total"] == 2
        by_symbol = client.get("/api/datasets", params={"symbol": f"s{unique[:4]}", "granularity": "1d"}).json()
        assert [d["dataset_slug"] for d in by_symbol["datasets"]] == [slugs[2]]
        page = client.get("/api/datasets", params={"search": unique, "sort": "dataset_slug", "limit": 2,
                                                   "offset": 1}).json()
        assert (page["total"], page["limit"], page["offset"]) == (3, 2, 1)
        assert [d["dataset_slug"] for d in page["datasets"]] == slugs[1:]
        desc = client.get("/api/datasets", params={"search": unique, "sort": "-dataset_slug"}).json()
        assert [d["dataset_slug"] for d in desc["datasets"]] == slugs[::-1]
        # `%` and `_` in a search are literal characters, not wildcards.
        assert client.get("/api/datasets", params={"search": f"{unique}%"}).json()["total"] == 0
    finally:
        for slug in slugs:
            client.delete(f"/api/datasets/{slug}")


def test_list_pages_are_bounded_by_bytes(client, unique):
    """Metadata is the client's JSON: six datasets of ~900 KB each do not fit one 4 MiB page, so the
    page ends early and next_offset goes on after its last row; every dataset comes once, in order."""
    slugs = [f"t3wide_{unique}_{i}" for i in range(6)]
    for slug in slugs:
        r = client.post("/api/datasets", json={"dataset_slug": slug, "metadata": {"blob": "z" * 900_000}})
        assert r.status_code == 201, r.text
    try:
        seen, offset, pages = [], 0, 0
        while offset is not None:
            page = client.get("/api/datasets", params={"search": f"t3wide_{unique}", "sort": "dataset_slug",
                                                       "limit": 100, "offset": offset})
            assert page.status_code == 200, page.text
            assert len(page.content) <= 5 * 1024 * 1024  # the 4 MiB cap plus at most one row
            body = page.json()
            assert body["total"] == 6
            seen += [d["dataset_slug"] for d in body["datasets"]]
            offset, pages = body["next_offset"], pages + 1
        assert seen == slugs and pages >= 2
    finally:
        for slug in slugs:
            client.delete(f"/api/datasets/{slug}")


def _all_json_rows(client, path, **params):
    rows, offset = [], 0
    while True:
        page = client.get(path, params={**params, "offset": offset, "limit": 200}).json()
        rows += page["rows"]
        if page["next_offset"] is None:
            return page, rows
        offset = page["next_offset"]


def test_ohlcv_and_indicator_rows_json_and_csv(client, triplet):
    slug, ohlcv, ind = triplet["slug"], triplet["ohlcv"], triplet["ind"]
    page, rows = _all_json_rows(client, f"/api/datasets/{slug}/ohlcv")
    assert page["columns"] == ["timestamp", "open", "high", "low", "close", "volume"] and page["total"] == 500
    assert rows == ohlcv  # value by value, floats exact

    r = client.get(f"/api/datasets/{slug}/ohlcv", params={"format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    parsed = list(csv.DictReader(io.StringIO(r.text)))
    assert [int(p["timestamp"]) for p in parsed] == [o["timestamp"] for o in ohlcv]
    assert all(float(p[k]) == o[k] for p, o in zip(parsed, ohlcv, strict=True) for k in ("open", "close", "volume"))

    lo, hi = ohlcv[100]["timestamp"], ohlcv[149]["timestamp"]
    window = client.get(f"/api/datasets/{slug}/ohlcv", params={"from": lo, "to": hi, "columns": "close,open",
                                                               "limit": 1000}).json()
    assert window["columns"] == ["timestamp", "close", "open"] and window["total"] == 50
    assert window["rows"] == [{"timestamp": o["timestamp"], "close": o["close"], "open": o["open"]}
                              for o in ohlcv[100:150]]
    edge = client.get(f"/api/datasets/{slug}/ohlcv", params={"from": 0, "to": 253402300799, "limit": 1})
    assert edge.status_code == 200 and edge.json()["total"] == 500  # the largest `to` (year 9999) is no error
    ms = client.get(f"/api/datasets/{slug}/ohlcv", params={"limit": 1, "timestamp_unit": "ms"}).json()
    assert ms["rows"][0]["timestamp"] == ohlcv[0]["timestamp"] * 1000

    page, rows = _all_json_rows(client, f"/api/datasets/{triplet['recorded']['dataset_id']}/indicators")
    assert page["columns"] == ["timestamp", "rsi_14", "ema_20", "signal"] and rows == ind
    r = client.get(f"/api/datasets/{slug}/indicators", params={"format": "csv", "columns": ["signal"],
                                                               "from": ind[-1]["timestamp"]})
    assert r.text.splitlines() == ['"timestamp","signal"', f"{ind[-1]['timestamp']},{ind[-1]['signal']}"]


def test_unknown_columns_and_missing_tables(client, triplet, unique):
    bad = assert_envelope(client.get(f"/api/datasets/{triplet['slug']}/ohlcv", params={"columns": "close,nope"}), 400)
    assert bad["details"]["unknown_columns"] == ["nope"]
    with dataset(client, f"t3mt_{unique}") as empty:
        missing = client.get(f"/api/datasets/{empty['dataset_slug']}/ohlcv")
        assert_envelope(missing, 404)


def test_not_found(client, unique):
    assert_envelope(client.get(f"/api/datasets/{uuid.uuid4()}"), 404)
    assert_envelope(client.get(f"/api/datasets/nope_{unique}"), 404)
    assert_envelope(client.get(f"/api/datasets/nope_{unique}/runs"), 404)
    assert_envelope(client.get(f"/api/datasets/nope_{unique}/simulations"), 404)
    assert_envelope(client.get(f"/api/datasets/{uuid.uuid4()}/ohlcv"), 404)
    assert_envelope(client.get(f"/api/datasets/{uuid.uuid4()}/indicators", params={"format": "csv"}), 404)
    assert_envelope(client.delete(f"/api/datasets/{uuid.uuid4()}"), 404)


def test_delete_refuses_while_runs_reference_it_unless_cascade(client, unique):
    slug = f"t3dl_{unique}"
    r = client.post("/api/datasets", json={"dataset_slug": slug})
    dataset_id = r.json()["dataset_id"]
    run = client.post("/api/runs", json={"dataset_id": dataset_id, "folds": [{"fold_number": 0}],
                                         "predictions": [{"timestamp": START, "fold_number": 0, "prediction": 0.5}]})
    assert run.status_code == 201, run.text
    table = run.json()["prediction_measurement"]
    sim = client.post("/api/simulations", json={"run_id": run.json()["run_id"],
                                                "trades": [{"bar_timestamp": START, "side": "long", "pnl": 1.0}]})
    assert sim.status_code == 201, sim.text
    try:
        refused = assert_envelope(client.delete(f"/api/datasets/{slug}"), 409)
        assert refused["details"]["related_runs"] == 1
        assert client.get(f"/api/datasets/{slug}").json()["related_runs"] == 1
        done = client.delete(f"/api/datasets/{slug}", params={"cascade": "true"})
        assert done.status_code == 200, done.text
        assert done.json() | {"dataset_id": None} == {
            "dataset_id": None, "dataset_slug": slug, "deleted": True, "runs_deleted": 1, "simulations_deleted": 1,
            "questdb_tables_dropped": [table], "questdb_tables_left": {}}
        assert not table_exists(table)
        assert_envelope(client.get(f"/api/runs/{run.json()['run_id']}"), 404)
        assert_envelope(client.get(f"/api/simulations/{sim.json()['simulation_id']}"), 404)
        assert_envelope(client.get(f"/api/datasets/{dataset_id}"), 404)
    finally:
        client.delete(f"/api/datasets/{slug}", params={"cascade": "true"})
        drop_tables(table)


def test_delete_drop_questdb_removes_the_tables(client, unique):
    slug = f"t3dq_{unique}"
    write_table(Kind.OHLCV, f"{slug}_ohlcv", ohlcv_rows(3))
    client.post("/api/datasets", json={"dataset_slug": slug})
    r = client.delete(f"/api/datasets/{slug}", params={"drop_questdb": "true"})
    assert r.status_code == 200, r.text
    assert set(r.json()["questdb_tables_dropped"]) == {f"{slug}_ohlcv", f"{slug}_ind"}
    assert not table_exists(f"{slug}_ohlcv")
