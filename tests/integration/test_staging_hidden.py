"""An import's staging table (`<target>__s<8 hex of the job id>`, docs/imports.md "Exactly one copy")
holds half an import until its commit, so no client sees it (stage1.core.questdb.is_staging): no name
field accepts such a name (400 naming the field), the raw SQL guard refuses it in every spelling QuestDB
runs (400 naming the table), the measurements list leaves it out and its detail is a 404.

Two staging tables: one made directly in QuestDB as an import makes it (every path, deterministic), and
the real one of a chunked upload whose first chunk is imported and whose second is not sent yet (the
import is running). On the old code every read here answered 200 with the staging rows or listed the
table, and every name field but the dataset's accepted the name."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from qdb_fixtures import drop, exec_sql, wait_rows
from resources_support import START, dataset
from test_chunked_uploads import bars, cut, declare, event, put, rows_of, wait_job

from stage1.core.questdb import get_questdb, quote

ENDPOINTS = ("/api/questdb/query", "/api/questdb/export")


@pytest.fixture(scope="module")
def staged():
    """A staging-named WAL table with rows, exactly as `ensure_table` + the import's ILP leave it."""
    name = f"zzstg_{uuid.uuid4().hex[:8]}__s{uuid.uuid4().hex[:8]}"
    exec_sql(f"create table {quote(name)} (timestamp TIMESTAMP, v DOUBLE) timestamp(timestamp) partition by DAY WAL")
    exec_sql(f"insert into {quote(name)} select timestamp_sequence(1704067200000000, 1000000), x from long_sequence(5)")
    wait_rows(name, 5)
    yield name
    drop(name)


def spellings(name: str) -> list[str]:
    upper = name.upper()
    return [f"select * from {name}", f"select * from {upper}", f'select * from "{name}"', f'select * from "{upper}"',
            f"select * from '{name}'", f"select * from '{upper}'", f"select * from `{name}`",
            f'select * from "public.{name}"', f"select * from public.{name}", f"select count() from ({name})",
            f"with x as (select * from {name}) select * from x",
            f"select * from long_sequence(1) cross join {name}",
            f"select * from table_partitions('{name}')", f"select * from table_columns('{name}')"]


def test_questdb_itself_runs_the_spellings(staged):
    """What the guard stands in front of: QuestDB reads the staging table under each name form."""
    for sql in (f"select count() from '{staged.upper()}'", f'select count() from "public.{staged}"',
                f"select count() from `{staged}`"):
        assert get_questdb().exec(sql).dataset == [[5]], sql


def test_raw_sql_refuses_the_staging_table_in_every_spelling(client, staged):
    for sql in spellings(staged):
        for endpoint in ENDPOINTS:
            r = client.post(endpoint, json={"sql": sql})
            assert r.status_code == 400, (endpoint, sql, r.status_code, r.text[:300])
            body = r.json()
            assert set(body) == {"error", "details"}, body
            assert "staging table" in body["details"]["reason"] and staged in body["details"]["reason"], body
    # Decided: the names stay listed by tables() (a name is no data); only reading the table is refused.
    r = client.post("/api/questdb/query", json={"sql": f"select table_name from tables() where table_name like "
                                                       f"'{staged[:14]}%'"})
    assert r.status_code == 200 and r.json()["rows"] == [[staged]], r.text[:300]


def test_measurements_list_and_detail_leave_it_out(client, staged):
    listed = client.get("/api/questdb/measurements", params={"prefix": staged[:14]})
    assert listed.status_code == 200, listed.text
    assert listed.json()["items"] == [] and listed.json()["total"] == 0, listed.json()
    everything = client.get("/api/questdb/measurements").json()["items"]
    assert staged not in {m["name"] for m in everything}
    detail = client.get(f"/api/questdb/measurement/{staged}")
    assert detail.status_code == 404 and set(detail.json()) == {"error", "details"}, detail.text[:300]


def _refused(r: httpx.Response, field: str) -> None:
    assert r.status_code == 400, (field, r.status_code, r.text[:300])
    body = r.json()
    assert set(body) == {"error", "details"} and body["details"]["field"] == field, body
    assert "staging" in body["error"], body


def test_no_name_field_accepts_a_staging_name(client, staged):
    """Both a staging name that exists (registering it would hand the import's table to a record)
    and one that does not (an upload or run would create a table readers then could not see)."""
    suffix = uuid.uuid4().hex[:8]
    fresh = f"zzstg_new_{suffix}__s{uuid.uuid4().hex[:8]}"
    predictions = [{"timestamp": START, "fold_number": 0, "prediction": 0.5}]
    csv = b"timestamp,v\n2024-01-01T00:00:00Z,1.0\n"
    with dataset(client, f"zzstg_ds_{suffix}") as ds:
        for name in (staged, fresh):
            for field in ("ohlcv_measurement", "indicator_measurement"):
                slug = f"zzstg_ds2_{uuid.uuid4().hex[:8]}"
                _refused(client.post("/api/datasets", json={"dataset_slug": slug, field: name}), field)
                assert client.get(f"/api/datasets/{slug}").status_code == 404
            _refused(client.post("/api/runs", json={"dataset_id": ds["dataset_id"], "prediction_measurement": name,
                                                    "predictions": predictions}), "prediction_measurement")
            _refused(client.post("/api/runs", json={"dataset_id": ds["dataset_id"], "prediction_measurement": name}),
                     "prediction_measurement")
            _refused(client.post("/api/uploads", json={"filename": "x.csv", "size": 100, "kind": "raw",
                                                       "measurement": name}), "measurement")
            _refused(client.post(f"/api/datasets/{ds['dataset_id']}/uploads",
                                 json={"filename": "x.csv", "size": 100, "kind": "ohlcv", "measurement": name}),
                     "measurement")
            for path in ("/api/questdb/import", "/api/questdb/import/async"):
                _refused(client.post(path, params={"measurement": name, "kind": "raw"}, content=csv,
                                     headers={"Content-Type": "text/csv"}), "measurement")
                _refused(client.post(path, json={"measurement": name, "kind": "raw", "data": csv.decode()}),
                         "measurement")
    assert not get_questdb().table_exists(fresh)
    assert get_questdb().exec(f"select count() from {quote(staged)}").dataset == [[5]]  # untouched


def _first_chunk_in(client: httpx.Client, upload_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        status = client.get(f"/api/uploads/{upload_id}").json()
        if status["chunks"][0]["state"] == "IMPORTED":
            return
        assert time.monotonic() < deadline, status
        time.sleep(0.2)


def test_a_running_chunked_import_is_invisible_until_its_commit(client):
    target = f"zzstg_chunk_{uuid.uuid4().hex[:10]}"
    chunks = cut(bars(4_000), 2)
    up = declare(client, chunks, target)
    staging = f"{target}__s{up['job_id'].replace('-', '')[:8]}"
    try:
        assert put(up, 1, chunks[0]).status_code == 200
        event(client, up["chunks"][0]["object_key"])
        _first_chunk_in(client, up["upload_id"])
        assert get_questdb().table_exists(staging)  # half the import is in QuestDB ...
        assert client.get("/api/jobs/" + up["job_id"]).json()["status"] in ("PENDING", "RUNNING")
        listed = client.get("/api/questdb/measurements", params={"prefix": target}).json()
        assert listed["items"] == [], listed  # ... and nobody sees it: not listed (the target is new)
        assert client.get(f"/api/questdb/measurement/{staging}").status_code == 404
        for endpoint in ENDPOINTS:
            r = client.post(endpoint, json={"sql": f"select count() from {staging}"})
            assert r.status_code == 400 and staging in r.json()["details"]["reason"], r.text[:300]

        assert put(up, 2, chunks[1]).status_code == 200
        event(client, up["chunks"][1]["object_key"])
        job = wait_job(client, up["job_id"])
        assert job["status"] == "COMPLETED", job
        listed = client.get("/api/questdb/measurements", params={"prefix": target}).json()
        assert [(m["name"], m["row_count"]) for m in listed["items"]] == [(target, 4_000)], listed
        assert len(rows_of(target)) == 4_000 and not get_questdb().table_exists(staging)
    finally:
        drop(target, staging)
