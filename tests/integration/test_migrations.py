"""The runner against a scratch database on the real server: up, idempotent up, down all, up."""

import uuid

import psycopg
import pytest

from stage1_local.migrate import discover, down, status, up

TABLES = {"stage1_datasets", "walkforward_runs", "walkforward_folds", "simulation_runs",
          "simulation_trade_buckets", "simulation_trades", "stage1_jobs", "stage1_api_tokens"}


@pytest.fixture
def scratch_dsn(settings):
    name = f"stage1_migtest_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(settings.postgres.pg_dsn, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    dsn = psycopg.conninfo.make_conninfo(settings.postgres.pg_dsn, dbname=name)
    yield dsn
    with psycopg.connect(settings.postgres.pg_dsn, autocommit=True) as admin:
        admin.execute(f'drop database if exists "{name}" with (force)')


def _relations(conn) -> set[str]:
    rows = conn.execute(
        "select table_name from information_schema.tables where table_schema = 'public'"
    ).fetchall()
    return {r[0] for r in rows}


def test_up_is_idempotent_and_down_all_round_trips(scratch_dsn, capsys):
    migrations = discover()
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        assert up(conn, migrations) == len(migrations)
        first = _relations(conn)
        assert TABLES | {"dataset_catalog", "schema_migrations"} <= first
        assert up(conn, migrations) == 0  # a second `up` is a no-op
        assert all(applied for _, applied in status(conn, migrations))

        assert down(conn, migrations, len(migrations)) == len(migrations)
        assert _relations(conn) == {"schema_migrations"}
        assert not any(applied for _, applied in status(conn, migrations))

        assert up(conn, migrations) == len(migrations)
        assert _relations(conn) == first


def test_dry_run_changes_nothing(scratch_dsn, capsys):
    migrations = discover()
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        up(conn, migrations, dry_run=True)
        assert "create table stage1_datasets" in capsys.readouterr().out
        assert _relations(conn) == {"schema_migrations"}


def test_catalog_view_counts_related_rows(scratch_dsn):
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        up(conn, discover())
        ds = conn.execute(
            "insert into stage1_datasets (dataset_slug, ohlcv_measurement, indicator_measurement) "
            "values ('d1', 'd1_ohlcv', 'd1_ind') returning dataset_id").fetchone()[0]
        run = conn.execute(
            "insert into walkforward_runs (dataset_id, prediction_measurement) values (%s, 'd1_wf_1') "
            "returning run_id", (ds,)).fetchone()[0]
        conn.execute("insert into simulation_runs (dataset_id, run_id) values (%s, %s)", (ds, run))
        row = conn.execute(
            "select related_runs, related_simulations from dataset_catalog where dataset_id = %s", (ds,)).fetchone()
        assert row == (1, 1)
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("insert into stage1_datasets (dataset_slug, ohlcv_measurement, indicator_measurement) "
                         "values ('Bad-Slug', 'x', 'y')")
