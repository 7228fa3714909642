"""GET /api/questdb/measurements and /measurement/{name} against what QuestDB's own metadata says."""

from __future__ import annotations

from datetime import datetime

import pytest
from qdb_fixtures import create_predictions, drop, exec_sql

from stage1.core.questdb import quote


def unix(iso: str | None) -> int | None:
    if iso is None:
        return None
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() // 1)


@pytest.fixture(scope="module")
def tables():
    import uuid

    prefix = f"zzq5m_{uuid.uuid4().hex[:8]}"
    wal, plain, nots, empty = f"{prefix}_wal", f"{prefix}_plain", f"{prefix}_nots", f"{prefix}_empty"
    create_predictions(wal, 500)
    exec_sql(f"create table {quote(plain)} (ts TIMESTAMP, v DOUBLE) timestamp(ts) partition by MONTH BYPASS WAL")
    exec_sql(f"insert into {quote(plain)} select timestamp_sequence(1700000000000000, 60000000), rnd_double() "
             f"from long_sequence(90)")
    exec_sql(f"create table {quote(nots)} (v DOUBLE, s VARCHAR)")
    exec_sql(f"insert into {quote(nots)} select rnd_double(), 'x' from long_sequence(7)")
    create_predictions(empty, 0)
    yield {"prefix": prefix, "wal": wal, "plain": plain, "nots": nots, "empty": empty}
    drop(wal, plain, nots, empty)


def questdb_tables(prefix: str) -> dict[str, dict]:
    out = exec_sql("select table_name, designatedTimestamp, partitionBy, walEnabled, dedup, table_row_count, "
                   "table_min_timestamp, table_max_timestamp from tables()")
    rows = [dict(zip(out["columns"], r, strict=True)) for r in out["rows"]]
    return {r["table_name"]: r for r in rows if r["table_name"].startswith(prefix)}


def partitions(name: str) -> list[dict]:
    out = exec_sql(f"select * from table_partitions('{name}')")
    return [dict(zip(out["columns"], r, strict=True)) for r in out["rows"]]


def test_list_matches_questdb_metadata(client, tables):
    r = client.get("/api/questdb/measurements", params={"prefix": tables["prefix"]})
    assert r.status_code == 200, r.text
    body = r.json()
    items = {m["name"]: m for m in body["items"]}
    truth = questdb_tables(tables["prefix"])
    assert set(items) == set(truth) == {tables[k] for k in ("wal", "plain", "nots", "empty")}
    assert body["total"] == 4 and body["prefix"] == tables["prefix"]
    for name, t in truth.items():
        m = items[name]
        # tables() has no count for a WAL table before its first transaction: then the partitions'.
        count = t["table_row_count"]
        assert m["row_count"] == (count if count is not None else sum(p["numRows"] for p in partitions(name)))
        assert m["designated_timestamp"] == t["designatedTimestamp"]
        assert m["partition_by"] == t["partitionBy"]
        assert m["wal_enabled"] == t["walEnabled"] and m["dedup"] == t["dedup"]
        parts = [p for p in partitions(name) if p["minTimestamp"]]
        # Bounds: tables() for WAL tables; the partitions for the others; never a guess.
        first = unix(t["table_min_timestamp"]) if t["table_min_timestamp"] else (
            min(unix(p["minTimestamp"]) for p in parts) if parts else None)
        last = unix(t["table_max_timestamp"]) if t["table_max_timestamp"] else (
            max(unix(p["maxTimestamp"]) for p in parts) if parts else None)
        assert (m["first_ts"], m["last_ts"]) == (first, last), name


def test_list_values(client, tables):
    items = {m["name"]: m for m in client.get("/api/questdb/measurements",
                                                params={"prefix": tables["prefix"]}).json()["items"]}
    wal = items[tables["wal"]]
    # 500 hourly rows from 2024-01-01T00:00:00Z.
    assert (wal["row_count"], wal["first_ts"], wal["last_ts"]) == (500, 1704067200, 1704067200 + 499 * 3600)
    assert wal["designated_timestamp"] == "timestamp" and wal["partition_by"] == "DAY" and wal["wal_enabled"]
    plain = items[tables["plain"]]
    assert (plain["row_count"], plain["first_ts"], plain["last_ts"]) == (90, 1700000000, 1700000000 + 89 * 60)
    assert not plain["wal_enabled"]
    nots = items[tables["nots"]]
    assert (nots["row_count"], nots["first_ts"], nots["designated_timestamp"], nots["partition_by"]) == (
        7, None, None, "NONE")
    empty = items[tables["empty"]]
    assert (empty["row_count"], empty["first_ts"], empty["last_ts"]) == (0, None, None)


def test_prefix_filters_and_is_validated(client, tables):
    r = client.get("/api/questdb/measurements", params={"prefix": tables["prefix"] + "_wal"})
    assert [m["name"] for m in r.json()["items"]] == [tables["wal"]]
    assert client.get("/api/questdb/measurements", params={"prefix": "zz_no_such_prefix_q5"}).json()["items"] == []
    everything = client.get("/api/questdb/measurements").json()
    assert {tables["wal"], tables["plain"]} <= {m["name"] for m in everything["items"]}
    for bad in ("BTC", "a-b", "x'; drop table t; --", "a" * 64, "%"):
        r = client.get("/api/questdb/measurements", params={"prefix": bad})
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["error"]


def test_detail_matches_table_columns_and_partitions(client, tables):
    name = tables["wal"]
    r = client.get(f"/api/questdb/measurement/{name}", params={"sample": 3})
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["name"] == name and d["row_count"] == 500
    cols = exec_sql(f"select \"column\", type, designated, upsertKey, indexed from table_columns('{name}')")["rows"]
    assert [(c["name"], c["type"], c["designated"], c["dedup_key"], c["indexed"]) for c in d["columns"]] == [
        tuple(c) for c in cols]
    assert d["dedup_keys"] == ["timestamp", "fold_number"] == d["wal"]["dedup_keys"]
    assert d["wal"]["enabled"] is True and d["wal"]["suspended"] is False and d["wal"]["pending_rows"] == 0
    assert d["dedup"] is True
    parts = partitions(name)
    assert d["partitions"]["count"] == len(parts) == 21  # 500 hours over 21 days
    assert d["partitions"]["rows"] == sum(p["numRows"] for p in parts) == 500
    assert d["partitions"]["disk_size_bytes"] == sum(p["diskSize"] for p in parts)
    # The latest rows, in table order.
    assert [row["bar_index"] for row in d["sample_rows"]] == [497, 498, 499]
    assert set(d["sample_rows"][0]) == {"timestamp", "bar_index", "fold_number", "prediction", "target", "side"}
    side = next(c for c in d["columns"] if c["name"] == "side")
    assert side["type"] == "SYMBOL" and side["symbol_capacity"] and side["symbol_cached"] is not None


def test_detail_of_plain_and_empty_tables(client, tables):
    plain = client.get(f"/api/questdb/measurement/{tables['plain']}", params={"sample": 0}).json()
    assert plain["wal"]["enabled"] is False and plain["dedup_keys"] == [] and plain["sample_rows"] == []
    assert (plain["first_ts"], plain["last_ts"]) == (1700000000, 1700000000 + 89 * 60)
    empty = client.get(f"/api/questdb/measurement/{tables['empty']}").json()
    assert empty["row_count"] == 0 and empty["sample_rows"] == [] and empty["partitions"]["rows"] == 0


def test_unknown_measurement_is_404_and_invalid_name_400(client, unique):
    r = client.get(f"/api/questdb/measurement/zz_no_such_table_{unique}")
    assert r.status_code == 404
    assert r.json() == {"error": "no such measurement", "details": {"measurement": f"zz_no_such_table_{unique}"}}
    for bad in ("Bad-Name", "a.b", "x%27%3B%20drop", "a" * 64):
        r = client.get(f"/api/questdb/measurement/{bad}")
        assert r.status_code == 400, (bad, r.text)
    assert client.get(f"/api/questdb/measurement/zzq5_{unique}", params={"sample": 101}).status_code == 400


def test_a_renamed_table_still_shows_its_count_and_bounds(unique):
    """QuestDB keeps tables()'s row count and bounds per table token: right after a RENAME (how an
    import's staging table becomes a new target) it may show none. The state read counts the table
    itself then (reads.with_table_stats), so a dataset's row_count and bounds are never null after an import."""
    from qdb_fixtures import drop, exec_sql, wait_rows

    from stage1.timeseries import reads

    a, b = f"zz_rn_{unique}_a", f"zz_rn_{unique}_b"
    exec_sql(f"create table {a} (timestamp timestamp, v double) timestamp(timestamp) partition by month wal "
             "dedup upsert keys(timestamp)")
    try:
        exec_sql(f"insert into {a} select timestamp_sequence(60000000, 60000000) timestamp, x::double v "
                 "from long_sequence(1000)")
        wait_rows(a, 1000)
        exec_sql(f"rename table {a} to {b}")
        state = reads.table_states([b], tolerant=False)[b]
        assert state.exists and state.row_count == 1000
        assert (state.first_ts, state.last_ts) == (60, 60_000)
    finally:
        drop(a, b)
