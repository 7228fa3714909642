"""The one INSERT of a `simulation_runs` row, shared by inline trades (`service`) and trades from an
upload (`from_upload`): both take the same fields from the request and answer a duplicate
`simulation_id` with the same 409."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from psycopg import Connection, sql

from stage1.core.db import jsonb
from stage1.core.errors import Conflict
from stage1.simulations.schemas import SimulationIn
from stage1.timeseries.client_times import client_time


def insert_record(conn: Connection[Any], simulation_id: uuid.UUID, run_id: Any, dataset_id: Any, body: SimulationIn,
                  *, status: str, trade_count: int, completed_now: bool, **columns: Any) -> None:
    """`completed_now`: a missing `completed_at` becomes now() (the simulation is whole at once);
    `columns`: the path's own columns (fixed names from this package, never from the request)."""
    values: dict[str, Any] = {
        "simulation_id": simulation_id, "run_id": run_id, "dataset_id": dataset_id, "name": body.name,
        "status": status, "config": jsonb(body.config), "summary_metrics": jsonb(body.summary_metrics),
        "trade_count": trade_count, "started_at": client_time(body.started_at, "started_at"),
        "completed_at": client_time(body.completed_at, "completed_at"), **columns,
    }
    defaults = {"started_at"} | ({"completed_at"} if completed_now else set())
    placeholders = [sql.SQL("coalesce({}, now())").format(sql.Placeholder(k)) if k in defaults
                    else sql.Placeholder(k) for k in values]
    statement = sql.SQL("insert into simulation_runs ({}) values ({})").format(
        sql.SQL(", ").join(map(sql.Identifier, values)), sql.SQL(", ").join(placeholders))
    try:
        with conn.transaction():
            conn.execute(statement, values)
    except psycopg.errors.UniqueViolation:
        raise Conflict("simulation_id already exists", {"simulation_id": str(simulation_id)}) from None
