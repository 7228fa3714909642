"""Issue 11, hole 2: a run (a dataset, an upload) writes only into a table it owns, and deletes drop
only owned tables. Through the gateway, against the real Postgres and QuestDB.

On the old code: a run naming another dataset's OHLCV table wrote its rows into it (201) and its
DELETE dropped it; a run naming a table made outside the service wrote into it too."""

from __future__ import annotations

import uuid

import pytest
from resources_support import (
    HOUR,
    START,
    assert_envelope,
    dataset,
    drop_tables,
    ohlcv_rows,
    predictions,
    table_exists,
    write_table,
)

from stage1.core.questdb import get_questdb
from stage1.timeseries.kinds import Kind


def _count(table: str) -> int:
    from stage1.timeseries.wal import wait_applied

    wait_applied(table)
    return int(get_questdb().exec(f'select count() as n from "{table}"').rows()[0]["n"])


@pytest.fixture
def ds(client, unique):
    with dataset(client, f"own_{unique}") as created:
        write_table(Kind.OHLCV, created["ohlcv_measurement"], ohlcv_rows(40))
        yield created


def _inline(n: int = 30) -> list[dict]:
    return predictions(n, 2, [], seed=5)


def test_a_run_cannot_write_into_another_datasets_table(client, ds, unique):
    with dataset(client, f"own2_{unique}") as other:
        table = ds["ohlcv_measurement"]
        run_id = str(uuid.uuid4())
        for extra in ({"predictions": _inline()}, {}):  # with rows, and as a mere registration
            err = assert_envelope(client.post("/api/runs", json={
                "run_id": run_id, "dataset_id": other["dataset_id"], "prediction_measurement": table, **extra}), 409)
            assert err["details"] == {"table": table, "owner_kind": "dataset", "owner_id": ds["dataset_id"]}
            assert ds["dataset_id"] in err["error"]
        assert _count(table) == 40  # not one row written into it
        assert_envelope(client.get(f"/api/runs/{run_id}"), 404)


def test_a_run_cannot_write_inline_rows_into_a_table_made_outside_the_service(client, ds, unique):
    table = f"own_ext_{unique}"
    write_table(Kind.PREDICTIONS, table, predictions(25, 1, [], seed=7))
    try:
        err = assert_envelope(client.post("/api/runs", json={
            "dataset_id": ds["dataset_id"], "prediction_measurement": table, "predictions": _inline()}), 409)
        assert err["details"] == {"table": table, "owner_kind": None, "owner_id": None}
        assert _count(table) == 25
        assert client.get("/api/runs", params={"measurement": table}).json()["total"] == 0
    finally:
        drop_tables(table)


def test_registering_an_outside_table_is_allowed_and_its_delete_keeps_the_table(client, ds, unique):
    table = f"own_reg_{unique}"
    write_table(Kind.PREDICTIONS, table, predictions(25, 1, [], seed=7))
    try:
        r = client.post("/api/runs", json={"dataset_id": ds["dataset_id"], "prediction_measurement": table})
        assert r.status_code == 201, r.text
        assert r.json()["prediction_rows"] == 25 and r.json()["questdb_rows_written"] == 0
        # Now it is that run's table: another run cannot take it, not even to register it.
        assert_envelope(client.post("/api/runs", json={"dataset_id": ds["dataset_id"],
                                                       "prediction_measurement": table}), 409)
        d = client.delete(f"/api/runs/{r.json()['run_id']}")
        assert d.status_code == 200, d.text
        assert d.json()["questdb_table_dropped"] is False
        assert table_exists(table) and _count(table) == 25
    finally:
        drop_tables(table)


def test_dataset_delete_drops_only_the_tables_it_owns(client, unique):
    outside = f"own_out_{unique}"
    write_table(Kind.PREDICTIONS, outside, predictions(10, 1, [], seed=8))
    slug = f"own_del_{unique}"
    created = client.post("/api/datasets", json={"dataset_slug": slug, "granularity": "1h"})
    assert created.status_code == 201, created.text
    ds = created.json()
    try:
        write_table(Kind.OHLCV, ds["ohlcv_measurement"], ohlcv_rows(5))
        registered = client.post("/api/runs", json={"dataset_id": ds["dataset_id"], "prediction_measurement": outside})
        inline = client.post("/api/runs", json={"dataset_id": ds["dataset_id"], "predictions": _inline()})
        assert registered.status_code == 201 and inline.status_code == 201, (registered.text, inline.text)
        r = client.delete(f"/api/datasets/{slug}", params={"cascade": "true", "drop_questdb": "true"})
        assert r.status_code == 200, r.text
        assert sorted(r.json()["questdb_tables_dropped"]) == sorted(
            [ds["ohlcv_measurement"], ds["indicator_measurement"], inline.json()["prediction_measurement"]])
        assert r.json()["runs_deleted"] == 2
        assert table_exists(outside) and _count(outside) == 10  # registered, never the service's
        assert not table_exists(inline.json()["prediction_measurement"])
    finally:
        client.delete(f"/api/datasets/{slug}", params={"cascade": "true", "drop_questdb": "true"})
        drop_tables(outside, ds["ohlcv_measurement"])


def test_a_dataset_cannot_name_another_records_table(client, ds, unique):
    slug = f"own_dup_{unique}"
    err = assert_envelope(client.post("/api/datasets", json={"dataset_slug": slug,
                                                             "ohlcv_measurement": ds["ohlcv_measurement"]}), 409)
    assert err["details"] == {"table": ds["ohlcv_measurement"], "owner_kind": "dataset",
                              "owner_id": ds["dataset_id"]}
    assert_envelope(client.get(f"/api/datasets/{slug}"), 404)  # nothing stored
    run = client.post("/api/runs", json={"dataset_id": ds["dataset_id"], "predictions": _inline()}).json()
    err = assert_envelope(client.post("/api/datasets", json={
        "dataset_slug": slug, "indicator_measurement": run["prediction_measurement"]}), 409)
    assert err["details"]["owner_kind"] == "run" and err["details"]["owner_id"] == run["run_id"]
    # An update of the owner itself is fine, and a new name lets go of the old one.
    again = client.post("/api/datasets", json={"dataset_slug": ds["dataset_slug"], "symbol": "ETH"})
    assert again.status_code == 200, again.text


def test_an_upload_cannot_fill_another_records_table(client, ds, unique):
    base = {"filename": "p.csv", "size": 100, "kind": "predictions"}
    err = assert_envelope(client.post("/api/uploads", json={**base, "measurement": ds["ohlcv_measurement"]}), 409)
    assert err["details"]["owner_kind"] == "dataset"
    outside = f"own_upx_{unique}"
    write_table(Kind.PREDICTIONS, outside, predictions(5, 1, [], seed=9))
    try:
        err = assert_envelope(client.post("/api/uploads", json={**base, "measurement": outside}), 409)
        assert err["details"] == {"table": outside, "owner_kind": None, "owner_id": None}
    finally:
        drop_tables(outside)
    # A dataset upload may fill only the dataset's own tables.
    with dataset(client, f"own_up2_{unique}") as other:
        err = assert_envelope(client.post(f"/api/datasets/{other['dataset_id']}/uploads", json={
            "filename": "o.csv", "size": 100, "kind": "ohlcv", "measurement": ds["ohlcv_measurement"]}), 409)
        assert err["details"]["owner_id"] == ds["dataset_id"]


def test_a_failed_attempts_leftover_is_adopted_by_the_retry(client, ds, unique):
    """A create whose DROP did not happen leaves its table registered to the deleted run; the
    client's retry under the same name writes into it (DEDUP) and completes."""
    from stage1.core import db

    table = f"own_left_{unique}"
    write_table(Kind.PREDICTIONS, table, [{"timestamp": START + i * HOUR, "fold_number": 0, "prediction": 0.1}
                                          for i in range(12)])
    with db.connection() as conn:
        conn.execute("insert into stage1_questdb_tables (table_name, owner_kind, owner_id, role, owned) "
                     "values (%s, 'run', gen_random_uuid(), 'predictions', true)", (table,))
    rows = [{"timestamp": START + i * HOUR, "fold_number": 0, "prediction": 0.5} for i in range(20)]
    r = client.post("/api/runs", json={"dataset_id": ds["dataset_id"], "prediction_measurement": table,
                                       "predictions": rows})
    try:
        assert r.status_code == 201, r.text
        assert r.json()["prediction_rows"] == 20
        d = client.delete(f"/api/runs/{r.json()['run_id']}").json()
        assert d["questdb_table_dropped"] is True and not table_exists(table)
    finally:
        drop_tables(table)
        with db.connection() as conn:
            conn.execute("delete from stage1_questdb_tables where table_name = %s", (table,))
