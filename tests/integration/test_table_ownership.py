"""The QuestDB table registry (stage1.timeseries.ownership) against the real Postgres."""

from __future__ import annotations

import uuid

import pytest

from stage1.core import db
from stage1.core.errors import BadRequest, Conflict
from stage1.timeseries import ownership as own


def _name() -> str:
    return f"own_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def conn():
    with db.connection() as c, c.transaction(force_rollback=True):
        yield c


def test_claim_is_idempotent_for_its_owner_and_409_for_another(conn):
    table, run, other = _name(), own.Owner("run", uuid.uuid4()), own.Owner("dataset", uuid.uuid4())
    first = own.claim(conn, table, run, "predictions", exists=False)
    assert first == own.Registration(table, run, "predictions", True)
    assert own.claim(conn, table, run, "predictions", exists=True) == first  # same owner: unchanged
    with pytest.raises(Conflict) as err:
        own.claim(conn, table, other, "ohlcv", exists=False)
    assert err.value.details == {"table": table, "owner_kind": "run", "owner_id": str(run.id)}
    assert f"belongs to run {run.id}" in err.value.message
    assert own.owner_of(conn, table) == first


def test_require_writer(conn):
    table, run = _name(), own.Owner("run", uuid.uuid4())
    with pytest.raises(Conflict):
        own.require_writer(conn, table, run)  # unregistered
    own.claim(conn, table, run, "predictions", exists=False)
    assert own.require_writer(conn, table, run).owner == run
    with pytest.raises(Conflict) as err:
        own.require_writer(conn, table, own.Owner("job", uuid.uuid4()))
    assert err.value.details["owner_kind"] == "run"


def test_transfer_keeps_owned_and_refuses_a_third_owner(conn):
    table = _name()
    upload, run = own.Owner("upload", uuid.uuid4()), own.Owner("run", uuid.uuid4())
    own.claim(conn, table, upload, "predictions", exists=True)
    reg = own.transfer(conn, table, upload, run, "predictions")
    assert reg == own.Registration(table, run, "predictions", False)
    assert own.transfer(conn, table, upload, run, "predictions") == reg  # idempotent
    with pytest.raises(Conflict):
        own.transfer(conn, table, upload, own.Owner("run", uuid.uuid4()), "predictions")


def test_release_returns_only_owned_unreferenced_tables(conn):
    dataset = conn.execute(
        "insert into stage1_datasets (dataset_slug, ohlcv_measurement, indicator_measurement) "
        "values (%s, %s, %s) returning dataset_id", (_name(), _name(), _name())).fetchone()["dataset_id"]
    owner = own.Owner("job", uuid.uuid4())
    mine, foreign, named = _name(), _name(), _name()
    own.claim(conn, mine, owner, "staging", exists=False)
    own.claim(conn, foreign, owner, "staging", exists=True)  # existed before: never dropped
    own.claim(conn, named, owner, "staging", exists=False)
    conn.execute("update stage1_datasets set ohlcv_measurement = %s where dataset_id = %s", (named, dataset))
    assert own.release(conn, owner) == [mine]  # `named` is still a dataset's table
    assert own.owner_of(conn, mine) is None and own.owner_of(conn, foreign) is None


def test_release_of_some_tables_only(conn):
    owner, a, b = own.Owner("job", uuid.uuid4()), _name(), _name()
    own.claim(conn, a, owner, "staging", exists=False)
    own.claim(conn, b, owner, "staging", exists=False)
    assert own.release(conn, owner, [a]) == [a]
    assert own.owner_of(conn, b) is not None


@pytest.mark.parametrize("name", ["telemetry", "telemetry_config", "sys", "files", "_", "__", "_query_trace",
                                  "a-b", "A", "", "x" * 64])
def test_check_name_refuses_reserved_and_invalid_names(name):
    with pytest.raises(BadRequest):
        own.check_name(name)


def test_owner_rejects_unknown_kind():
    with pytest.raises(ValueError):
        own.Owner("table", uuid.uuid4())


def test_a_table_a_delete_could_not_drop_stays_registered_until_the_sweeper_drops_it(unique):
    """A delete's DROP that does not happen (here: its time budget is spent) leaves the table
    registered to the deleted record; the sweeper's orphan pass drops it and forgets it."""
    from resources_support import write_table

    from stage1.core.budget import Budget
    from stage1.core.questdb import get_questdb
    from stage1.timeseries import cleanup
    from stage1.timeseries.kinds import Kind

    table = f"own_left_{unique}"
    write_table(Kind.PREDICTIONS, table, [{"timestamp": 1_704_067_200, "fold_number": 0, "prediction": 0.1}])
    run = own.Owner("run", uuid.uuid4())  # a run that does not exist (deleted)
    with db.connection() as c:
        own.claim(c, table, run, "predictions", exists=False)
    with db.connection() as c:
        regs = own.release_registrations(c, run)
    assert [r.table for r in regs] == [table]
    dropped, left = cleanup.drop_released(regs, Budget(0))
    assert dropped == [] and "time budget" in left[table]
    with db.connection() as c:
        assert own.owner_of(c, table) == own.Registration(table, run, "predictions", True)
    assert cleanup.sweep_orphans({"run": 0}) >= 1
    assert not get_questdb().table_exists(table)
    with db.connection() as c:
        assert own.owner_of(c, table) is None
