"""Which data a run saw (issue 13): dataset versions from content fingerprints, recorded by imports
through the real upload pipeline, and a run's / simulation's `dataset_version` / `dataset_changed`.

Before this change a dataset had no version, an import recorded nothing and run detail had no
`dataset_version`: every assertion on those fields fails on the old code."""

from __future__ import annotations

import pytest
from imports_support import T0, drop, ohlcv_csv, post_file, wait_job

from stage1.core import db

ROWS = 500


def _one_close_changed(data: bytes, row: int, close: str) -> bytes:
    lines = data.decode().splitlines()
    cells = lines[row + 1].split(",")
    cells[4] = close
    lines[row + 1] = ",".join(cells)
    return ("\n".join(lines) + "\n").encode()


def _import(client, slug: str, data: bytes) -> dict:
    r = client.post(f"/api/datasets/{slug}/uploads", json={"filename": "o.csv", "size": len(data), "kind": "ohlcv"})
    assert r.status_code == 201, r.text
    up = r.json()
    post_file(up, data)
    job = wait_job(client, up["job_id"])
    assert job["status"] == "COMPLETED", job
    # the hook's keys: absent when the gateway that ran the import is older than this code
    assert "version" in (job["result"] or {}).get("dataset", {}), (
        f"the import ran without dataset versions (restart the gateway that runs imports): {job['result']}")
    return {"upload": up, "job": job}


@pytest.fixture
def ds(client, unique):
    slug = f"zz_dv_{unique}"
    r = client.post("/api/datasets", json={"dataset_slug": slug, "symbol": "BTC", "granularity": "1m"})
    assert r.status_code == 201, r.text
    created = r.json()
    yield created
    client.delete(f"/api/datasets/{slug}?cascade=true&drop_questdb=true")
    drop(created["ohlcv_measurement"])


def _run(client, ds: dict) -> dict:
    rows = [{"timestamp": T0 + 60 * k, "bar_index": k, "fold_number": 0, "prediction": 0.1 * k, "target": 0.0}
            for k in range(5)]
    r = client.post("/api/runs", json={"dataset_id": ds["dataset_id"], "folds": [{"fold_number": 0}],
                                       "predictions": rows})
    assert r.status_code == 201, r.text
    return r.json()


def test_versions_follow_content_changes_and_runs_see_theirs(client, ds):
    slug = ds["dataset_slug"]
    assert ds["version"] == 0 and ds["versions"] == []
    data = ohlcv_csv(ROWS)

    first = _import(client, slug, data)
    assert first["job"]["result"]["dataset"]["version"] == 1
    assert first["job"]["result"]["dataset"]["version_created"] is True
    detail = client.get(f"/api/datasets/{slug}").json()
    assert detail["version"] == 1 and [v["version"] for v in detail["versions"]] == [1]
    v1 = detail["versions"][0]
    assert v1["kind"] == "ohlcv" and v1["upload_id"] == first["upload"]["upload_id"]
    assert v1["job_id"] == first["upload"]["job_id"]
    assert v1["ohlcv"]["rows"] == ROWS and v1["ohlcv"]["first_ts"] == T0
    assert v1["ohlcv"]["last_ts"] == T0 + 60 * (ROWS - 1)
    assert len(v1["ohlcv"]["fingerprint"]) == 64 and v1["indicator"] == {
        "rows": 0, "first_ts": None, "last_ts": None, "fingerprint": None}

    run = _run(client, ds)
    sim = client.post("/api/simulations", json={"dataset_id": ds["dataset_id"], "name": "dv"})
    assert sim.status_code == 201, sim.text
    sim_id = sim.json()["simulation_id"]
    seen = client.get(f"/api/runs/{run['run_id']}").json()
    assert seen["dataset_version"]["version"] == 1 and seen["dataset_changed"] is False
    assert seen["dataset_version"]["fingerprint"] == v1["fingerprint"]
    assert seen["dataset_version"]["ohlcv"] == v1["ohlcv"]
    assert client.get(f"/api/simulations/{sim_id}").json()["dataset_changed"] is False

    # The same file again: DEDUP keeps the table as it was, so the fingerprint and the version stay.
    again = _import(client, slug, data)
    assert again["job"]["result"]["dataset"] | {} == {**again["job"]["result"]["dataset"], "version": 1,
                                                      "version_created": False}
    detail = client.get(f"/api/datasets/{slug}").json()
    assert detail["version"] == 1 and len(detail["versions"]) == 1
    assert client.get(f"/api/runs/{run['run_id']}").json()["dataset_changed"] is False

    # One close changed: a new version, exactly one.
    changed = _import(client, slug, _one_close_changed(data, 123, "999.25"))
    assert changed["job"]["result"]["dataset"]["version"] == 2
    detail = client.get(f"/api/datasets/{slug}").json()
    assert detail["version"] == 2 and [v["version"] for v in detail["versions"]] == [2, 1]
    v2 = detail["versions"][0]
    assert v2["ohlcv"]["fingerprint"] != v1["ohlcv"]["fingerprint"] and v2["ohlcv"]["rows"] == ROWS
    assert v2["upload_id"] == changed["upload"]["upload_id"]
    after = client.get(f"/api/runs/{run['run_id']}").json()
    assert after["dataset_changed"] is True and after["dataset_version"]["version"] == 1
    assert client.get(f"/api/simulations/{sim_id}").json()["dataset_changed"] is True

    # record_questdb reads the same content: no new version.
    r = client.post("/api/datasets?record_questdb=true", json={"dataset_slug": slug})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2

    # The versions route pages newest first.
    page = client.get(f"/api/datasets/{slug}/versions", params={"limit": 1}).json()
    assert page["version"] == 2 and page["total"] == 2 and page["next_offset"] == 1
    assert [v["version"] for v in page["versions"]] == [2]
    rest = client.get(f"/api/datasets/{slug}/versions", params={"limit": 1, "offset": 1}).json()
    assert [v["version"] for v in rest["versions"]] == [1] and rest["next_offset"] is None

    # A run stored before versions existed (0016) shows nulls.
    with db.connection() as conn:
        conn.execute("update walkforward_runs set dataset_version = null where run_id = %s", (run["run_id"],))
    old = client.get(f"/api/runs/{run['run_id']}").json()
    assert old["dataset_version"] is None and old["dataset_changed"] is None


def test_record_questdb_versions_a_dataset_whose_tables_were_written_outside(client, ds):
    """POST /api/datasets with record_questdb fingerprints both tables; an unchanged repeat adds nothing."""
    slug = ds["dataset_slug"]
    _import(client, slug, ohlcv_csv(50))
    from stage1.core.questdb import get_questdb

    table = ds["ohlcv_measurement"]
    get_questdb().exec(f'insert into "{table}" (timestamp, open, high, low, close, volume) '  # noqa: S608 - test table
                       f"values (cast({T0 * 1_000_000} as timestamp), 1.0, 2.0, 0.5, 1.5, 7.0)")
    first = client.post("/api/datasets?record_questdb=true", json={"dataset_slug": slug})
    assert first.status_code == 200 and first.json()["version"] == 2, first.text
    assert client.get(f"/api/datasets/{slug}").json()["versions"][0]["kind"] == "record"
    assert client.post("/api/datasets?record_questdb=true", json={"dataset_slug": slug}).json()["version"] == 2


def test_versions_route_errors(client, unique):
    r = client.get(f"/api/datasets/zz_nope_{unique}/versions")
    assert r.status_code == 404 and r.json()["error"]
    assert client.get("/api/datasets/x/versions", params={"limit": 0}).status_code == 400
