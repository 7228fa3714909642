"""POST /api/questdb/query and /export against the real QuestDB: hostile SQL is refused and writes
nothing (checked on the server), limits, QuestDB's error text, CSV/Parquet content."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
from qdb_fixtures import create_predictions, drop, exec_sql, exp_csv

from stage1.sql.functions import ALLOWED_FUNCTIONS, OPERATORS, REFUSED_FUNCTIONS

ROWS = 50


@pytest.fixture(scope="module")
def canary():
    """A predictions table every hostile statement targets; its state is compared afterwards."""
    prefix = f"zzq5s_{uuid.uuid4().hex[:8]}"
    name = f"{prefix}_canary"
    create_predictions(name, ROWS)
    yield {"name": name, "evil": f"{prefix}_evil", "prefix": prefix}
    drop(name, f"{prefix}_evil")


def state(canary: dict) -> dict:
    """What a write would change: rows, content, columns, and tables under our prefix."""
    name = canary["name"]
    agg = exec_sql(f"select count(), sum(prediction), sum(bar_index), max(timestamp) from {name}")["rows"][0]
    columns = exec_sql(f"select \"column\", type from table_columns('{name}')")["rows"]
    tables = sorted(r[0] for r in exec_sql("select table_name from tables()")["rows"]
                    if r[0].startswith(canary["prefix"]))
    meta = exec_sql(f"select dedup, walEnabled, table_suspended from tables() where table_name = '{name}'")["rows"]
    return {"agg": agg, "columns": columns, "tables": tables, "meta": meta}


def hostile(t: str, e: str) -> list[str]:
    return [
        f"DROP TABLE {t}",
        f"dRoP TaBlE {t}",
        f"insert into {t} select timestamp_sequence(0, 1), 1, 1, 1.0, 1.0, 'x' from long_sequence(10)",
        f"UPDATE {t} SET prediction = 0",
        f"ALTER TABLE {t} ADD COLUMN evil INT",
        f"alter table {t} dedup disable",
        f"TRUNCATE TABLE {t}",
        f"COPY {t} TO 'evil' WITH FORMAT PARQUET",
        f"CREATE TABLE {e} AS (SELECT * FROM {t})",
        f"create table {e} (a int)",
        f"select 1; drop table {t}",
        f"select 1;drop table {t};",
        f"select * from {t} where 1 = 1 ; truncate table {t}",
        f"/* select */ drop table {t}",
        f"-- select\ndrop table {t}",
        f"select 1 /* /* */ ; drop table {t} */",
        f"select 1 /* unterminated ; drop table {t}",
        f'"drop" table {t}',
        f"select E'\\'; drop table {t}; --'",
        f"select $$ ; drop table {t}; $$",
        f"select 1\u037e drop table {t}",
        f"WITH a AS (SELECT * FROM {t}) INSERT INTO {t} SELECT * FROM a",
        f"with a as (select 1 x) select * from a; drop table {t}",
        f"select * from {t} union all select * from {t}; rename table {t} to {e}",
        "select reload_config()",
        "select flush_query_cache()",
        f"select hydrate_table_metadata('{t}')",
        f"select touch(select * from {t})",
        "select * from files('/')",
        "select * from glob('/etc/*')",
        "select * from query_activity()",
        "select dump_thread_stacks()",
        "select cancel_query(1)",
        "BACKUP DATABASE",
        "SNAPSHOT PREPARE",
        "CHECKPOINT CREATE",
        f"VACUUM TABLE {t}",
        f"REINDEX TABLE {t} LOCK EXCLUSIVE",
        "CANCEL QUERY 1",
        f"explain select * from {t}",
        t,
    ]


def test_at_least_fifteen_hostile_inputs():
    assert len(hostile("t", "e")) >= 15


@pytest.mark.parametrize("endpoint", ["/api/questdb/query", "/api/questdb/export"])
def test_hostile_sql_is_refused_and_writes_nothing(client, canary, endpoint):
    before = state(canary)
    for sql in hostile(canary["name"], canary["evil"]):
        r = client.post(endpoint, json={"sql": sql})
        assert r.status_code == 400, (sql, r.status_code, r.text[:300])
        body = r.json()
        assert body["error"] and isinstance(body["details"], dict), sql
    assert state(canary) == before


def test_read_only_pgwire_user_refuses_writes_by_itself(settings, canary):
    """The second layer, without the parser: QuestDB's read-only user."""
    before = state(canary)
    t, e = canary["name"], canary["evil"]
    with psycopg.connect(settings.questdb.qdb_pg_readonly_dsn, autocommit=True, prepare_threshold=None) as conn:
        assert list(conn.cursor().stream(f"select count() from {t}"))[0][0] == ROWS
        for sql in [f"insert into {t} select timestamp_sequence(0, 1), 1, 1, 1.0, 1.0, 'x' from long_sequence(3)",
                    f"update {t} set prediction = 0", f"drop table {t}", f"truncate table {t}",
                    f"alter table {t} add column evil int", f"create table {e} (a int)",
                    f"create table {e} as (select * from {t})", f"vacuum table {t}", "snapshot prepare"]:
            with pytest.raises(psycopg.DatabaseError) as info:
                list(conn.cursor().stream(sql))
            assert "permission denied" in str(info.value).lower(), (sql, str(info.value))
    assert state(canary) == before


def test_exp_refuses_non_select_by_itself(settings, canary):
    """The second layer of exports, without the parser: QuestDB's /exp accepts only SELECT."""
    before = state(canary)
    t, e = canary["name"], canary["evil"]
    for sql in [f"drop table {t}", f"create table {e} (a int)", f"copy {t} to 'evil' with format parquet",
                f"with a as (select * from {t}) insert into {t} select * from a", f"update {t} set prediction = 0"]:
        r = httpx.get(f"{settings.questdb.qdb_http_url}/exp", params={"query": sql}, timeout=30)
        assert r.status_code == 400 and "only accepts SELECT" in r.text, (sql, r.text)
    assert state(canary) == before


REVIEWED = Path(__file__).with_name("questdb_functions_9.3.4.txt")


def test_every_server_function_is_classified_allowed_or_refused():
    """Every function the server offers is on the allowlist or the refused list (stage1.sql.functions),
    and the reviewed snapshot is exactly the server's list: a QuestDB upgrade that adds a function
    fails here until someone classifies it (an unclassified name is refused by the guard meanwhile)."""
    server = {r[0].lower() for r in exec_sql("select name from functions()")["rows"]}
    reviewed = {name.lower() for name in REVIEWED.read_text().split()}
    assert server == reviewed, {"new on the server": sorted(server - reviewed), "gone": sorted(reviewed - server)}
    assert server - ALLOWED_FUNCTIONS - REFUSED_FUNCTIONS - OPERATORS == set()
    assert not ALLOWED_FUNCTIONS - server, sorted(ALLOWED_FUNCTIONS - server)
    assert {"reload_config", "files", "glob", "touch", "query_activity", "read_parquet"} <= REFUSED_FUNCTIONS & server


def test_query_returns_columns_rows_and_types(client, canary):
    r = client.post("/api/questdb/query", json={"sql": f"select * from {canary['name']} where bar_index < 3"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [(c["name"], c["type"]) for c in body["columns"]] == [
        ("timestamp", "TIMESTAMP"), ("bar_index", "LONG"), ("fold_number", "INT"), ("prediction", "DOUBLE"),
        ("target", "DOUBLE"), ("side", "VARCHAR")]
    assert body["count"] == 3 and body["truncated"] is False and body["limit"] == 1000
    first = body["rows"][0]
    assert first[0].startswith("2024-01-01T00:00:00") and first[0].endswith("Z")
    assert first[1:5] == [0, 0, 0.001, 1.0]


def test_query_limits_and_truncation(client, canary, settings):
    sql = f"select bar_index from {canary['name']} order by bar_index"
    r = client.post("/api/questdb/query", params={"limit": 10}, json={"sql": sql}).json()
    assert (r["count"], r["truncated"], r["limit"]) == (10, True, 10)
    assert [row[0] for row in r["rows"]] == list(range(10))
    r = client.post("/api/questdb/query", params={"limit": 10}, json={"sql": sql, "limit": 4}).json()
    assert (r["count"], r["truncated"]) == (4, True)  # the body wins
    r = client.post("/api/questdb/query", params={"limit": ROWS}, json={"sql": sql}).json()
    assert (r["count"], r["truncated"]) == (ROWS, False)
    r = client.post("/api/questdb/query", json={"sql": "select x from long_sequence(20000)", "limit": 50000}).json()
    most = settings.queries.query_max_rows
    assert (r["count"], r["truncated"], r["limit"]) == (most, True, most)
    r = client.post("/api/questdb/query", json={"sql": "select x from long_sequence(1500)"}).json()
    assert (r["count"], r["truncated"]) == (settings.queries.query_default_rows, True)
    assert client.post("/api/questdb/query", params={"limit": 0}, json={"sql": sql}).status_code == 400
    assert client.post("/api/questdb/query", params={"limit": "x"}, json={"sql": sql}).status_code == 400


def test_query_relays_questdb_error_text(client, canary):
    r = client.post("/api/questdb/query", json={"sql": f"select nosuch from {canary['name']}"})
    assert r.status_code == 400
    assert r.json() == {"error": "questdb rejected the query",
                        "details": {"questdb": "Invalid column: nosuch", "position": 7}}
    r = client.post("/api/questdb/query", json={"sql": "select * from zz_no_such_table_q5"})
    assert r.status_code == 400 and "does not exist" in r.json()["details"]["questdb"]


def test_query_bad_bodies(client):
    assert client.post("/api/questdb/query", json={}).status_code == 400
    assert client.post("/api/questdb/query", content=b"not json",
                       headers={"content-type": "application/json"}).status_code == 400
    r = client.post("/api/questdb/query", json={"sql": "select 1 x", "unknown_field": True})
    assert r.status_code == 200 and r.json()["rows"] == [[1]]


def test_query_timeout_cancels(client):
    r = client.post("/api/questdb/query", params={"timeout": 1},
                    json={"sql": "select sum(rnd_double()) from long_sequence(5000000000)"})
    assert r.status_code == 504, r.text
    assert r.json()["details"] == {"timeout_seconds": 1.0}


def test_export_csv_is_questdbs_csv(client, canary):
    sql = f"select * from {canary['name']} where fold_number = 1 order by timestamp"
    r = client.post("/api/questdb/export", json={"sql": sql, "format": "csv"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == 'attachment; filename="export.csv"'
    assert r.content == exp_csv(sql)
    lines = r.text.splitlines()
    assert lines[0] == '"timestamp","bar_index","fold_number","prediction","target","side"'
    assert len(lines) == 1 + len([i for i in range(ROWS) if i % 3 == 1])


def test_export_filename_and_parquet(client, canary):
    import pyarrow.parquet as pq

    sql = f"select bar_index, prediction from {canary['name']}"
    r = client.post("/api/questdb/export", json={"sql": sql, "format": "parquet", "filename": "my preds"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/vnd.apache.parquet"
    assert r.headers["content-disposition"] == 'attachment; filename="my_preds.parquet"'
    table = pq.read_table(io.BytesIO(r.content))
    assert table.column("bar_index").to_pylist() == list(range(ROWS))
    assert client.post("/api/questdb/export", json={"sql": sql, "format": "xlsx"}).status_code == 400


def test_export_relays_questdb_error_text(client, canary):
    r = client.post("/api/questdb/export", json={"sql": f"select nosuch from {canary['name']}"})
    assert r.status_code == 400
    assert r.json() == {"error": "questdb rejected the query",
                        "details": {"questdb": "Invalid column: nosuch", "position": 7}}


def test_export_timeout_parameter(client):
    slow = {"sql": "select sum(rnd_double()) from long_sequence(5000000000)"}
    r = client.post("/api/questdb/export", params={"timeout": 1}, json=slow)
    assert r.status_code == 504 and r.json()["details"] == {"timeout_seconds": 1.0}
    for bad in (0, -1, 901, "x"):
        assert client.post("/api/questdb/export", params={"timeout": bad}, json=slow).status_code == 400
    assert client.post("/api/questdb/export", params={"mode": "bogus"}, json=slow).status_code == 400


def test_export_inline_streams_locally_beyond_the_cap(client, settings):
    """mode=inline: the local gateway streams a result larger than the Lambda cap, byte for byte."""
    rows = 400_000
    sql = f"select x, x * 3 y, x % 7 z from long_sequence({rows})"
    expected = exp_csv(sql)
    assert len(expected) > settings.exports.export_inline_max_bytes
    with client.stream("POST", "/api/questdb/export", params={"mode": "inline"}, json={"sql": sql}) as r:
        assert r.status_code == 200
        assert "content-length" not in r.headers  # streamed, not buffered
        body = r.read()
    assert body == expected


def _listening_pid(port: int) -> int | None:
    """The local process listening on `port` (Linux /proc), or None (a remote gateway)."""
    import os
    import re

    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                found = re.fullmatch(r"socket:\[(\d+)\]", link)
                if found and found.group(1) in inodes:
                    return int(pid)
        except OSError:
            continue
    return None


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_query_memory_is_bounded_by_bytes_not_rows(client, gateway_url):
    """Issue 11, hole 4: 10,000 rows of 60 KB were materialised (RSS +1.2 GiB) before the 5 MiB cap
    was applied. Now rows stream and stop at the cap: the gateway's peak RSS stays flat."""
    import threading
    import time
    from urllib.parse import urlparse

    pid = _listening_pid(urlparse(gateway_url).port or 80)
    if pid is None:
        pytest.skip("the gateway is not a local process: its RSS cannot be read")
    sql = "select rpad('x', 60000, 'y') s from long_sequence(10000)"
    client.post("/api/questdb/query", json={"sql": sql, "limit": 10})  # warm: pool, imports
    base, peak, stop = _rss_mb(pid), [0.0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_mb(pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        r = client.post("/api/questdb/query", json={"sql": sql, "limit": 10_000})
    finally:
        stop.set()
        sampler.join()
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["truncated"] is True and 0 < body["count"] < 10_000
    assert len(r.content) <= 5 * 1024**2 + 10_000
    assert all(len(row[0]) == 60_000 for row in body["rows"])
    assert peak[0] - base < 150, f"gateway RSS rose {peak[0] - base:.0f} MB (from {base:.0f} MB) for a 5 MB answer"


def test_query_refuses_a_row_over_the_row_cap(client, settings):
    """A row is at most 1 MiB on QuestDB's PGWire (its send buffer); as JSON it can be far larger
    (a quote becomes two bytes, a control character six). The row cap counts the JSON."""
    sql = "select rpad('x', 600000, '\"') a"
    r = client.post("/api/questdb/query", json={"sql": sql})
    assert r.status_code == 400, r.text[:300]
    assert r.json()["details"]["limit_bytes"] == settings.queries.query_max_row_bytes
    small = client.post("/api/questdb/query", json={"sql": "select rpad('x', 500000, 'y') a"})
    assert small.status_code == 200 and len(small.json()["rows"][0][0]) == 500_000


def test_timeouts_end_before_the_lambda_limit(client, settings):
    """Inline requests must finish inside the API function's 29 s: 30 s was the default, 300 s accepted."""
    assert settings.queries.query_timeout < settings.queries.query_max_timeout < 29
    assert settings.exports.export_timeout <= settings.exports.export_max_timeout < 29
    assert settings.exports.export_job_max_timeout < 900  # the ExporterFunction's own Timeout (template.yaml)
    sql = {"sql": "select 1 x"}
    r = client.post("/api/questdb/query", params={"timeout": 26}, json=sql)
    assert r.status_code == 400 and r.json()["details"]["max_timeout_seconds"] == settings.queries.query_max_timeout
    assert client.post("/api/questdb/query", params={"timeout": 300}, json=sql).status_code == 400
    assert client.post("/api/questdb/query", params={"timeout": 25}, json=sql).status_code == 200
    r = client.post("/api/questdb/export", params={"timeout": 26, "mode": "inline"}, json=sql)
    assert r.status_code == 400 and r.json()["details"]["max_timeout_seconds"] == settings.exports.export_max_timeout
    for mode in ("auto", "job"):
        r = client.post("/api/questdb/export", params={"timeout": 841, "mode": mode}, json=sql)
        assert r.status_code == 400, (mode, r.text)
        assert r.json()["details"]["max_timeout_seconds"] == settings.exports.export_job_max_timeout
    assert client.post("/api/questdb/export", params={"timeout": 100}, json=sql).status_code == 200
