"""Simulations: `simulation_runs`, `simulation_trades` and `simulation_trade_buckets`, all in Postgres.

Trades are kept in Postgres (not QuestDB): a simulation has thousands of trades, not millions, and
keeping them beside the record makes `POST /api/simulations` one Postgres transaction, so a
simulation is never half-written. The buckets are aggregated by SQL from the stored trades in the
same transaction (docs/resources.md lists them).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any, Literal

from psycopg import Connection, sql

from stage1.core import db
from stage1.core.csvtext import CsvBody, neutralise_csv
from stage1.core.db import jsonb
from stage1.core.errors import BadRequest, Conflict, NotFound
from stage1.core.filters import Column, Fields
from stage1.core.paging import next_offset, sort_orders
from stage1.core.ranking import prepare
from stage1.core.refs import parse_uuid
from stage1.core.settings import get_settings
from stage1.core.times import utc
from stage1.core.where import Where
from stage1.datasets import versions
from stage1.datasets.lookup import filter_by, find
from stage1.datasets.service import find_row as find_dataset
from stage1.simulations import from_upload, store
from stage1.simulations.schemas import (
    Bucket,
    SimulationDeleted,
    SimulationDetail,
    SimulationIn,
    SimulationLinks,
    SimulationList,
    SimulationSort,
    SimulationSummary,
    Trade,
    TradeList,
)
from stage1.timeseries.timestamps import to_micros

SORTS = sort_orders("s.", ("created_at", "started_at", "completed_at", "name", "trade_count"),
                    nulls_last=frozenset({"started_at", "completed_at"}))
_COLUMNS = """
select s.simulation_id, s.run_id, s.dataset_id, d.dataset_slug, s.name, s.status, s.error, s.trade_count,
       s.config, s.summary_metrics, s.started_at, s.completed_at, s.created_at, s.updated_at"""
_JOIN = " from simulation_runs s join stage1_datasets d on d.dataset_id = s.dataset_id\n"
_SELECT = _COLUMNS + _JOIN
# What `filter=` and `sort=` can name (stage1.core.filters; docs/resources.md, "Search and rank").
FIELDS = Fields(
    columns={
        "simulation_id": Column("s.simulation_id", "uuid"), "run_id": Column("s.run_id", "uuid", nullable=True),
        "dataset_id": Column("s.dataset_id", "uuid"), "dataset_slug": Column("d.dataset_slug", "text"),
        "name": Column("s.name", "text"), "status": Column("s.status", "text"),
        "trade_count": Column("s.trade_count", "number"), "created_at": Column("s.created_at", "time"),
        "started_at": Column("s.started_at", "time", nullable=True),
        "completed_at": Column("s.completed_at", "time", nullable=True),
    },
    documents={"summary_metrics": "s.summary_metrics", "config": "s.config"},
    id_column="s.simulation_id",
)
_COUNT = "select count(*) as n from simulation_runs s join stage1_datasets d on d.dataset_id = s.dataset_id"
_BUCKETS = """
insert into simulation_trade_buckets (simulation_id, bucket_type, bucket_key, trade_count, win_count, win_rate,
    total_pnl, mean_pnl, mean_return_pct)
select %(id)s, bucket_type, bucket_key, count(*), count(*) filter (where pnl > 0),
       (count(*) filter (where pnl > 0))::float8 / count(*), sum(pnl), avg(pnl), avg(return_pct)
from (
    select 'all' as bucket_type, 'all' as bucket_key, pnl, return_pct
      from simulation_trades where simulation_id = %(id)s
    union all
    select 'side', side, pnl, return_pct from simulation_trades where simulation_id = %(id)s
    union all
    select 'month', to_char(to_timestamp(bar_timestamp) at time zone 'UTC', 'YYYY-MM'), pnl, return_pct
      from simulation_trades where simulation_id = %(id)s
) t
group by bucket_type, bucket_key
"""
BUCKETS_SQL = _BUCKETS  # also run by simulations.from_upload once an upload's trades are loaded
TRADE_COLUMNS = ["trade_index", "bar_timestamp", "side", "entry_price", "exit_price", "quantity", "pnl",
                 "return_pct", "extra"]
_TRADES = "select " + ", ".join(TRADE_COLUMNS) + " from simulation_trades"  # noqa: S608 - constant
_SELECT_BUCKETS = """
select bucket_type, bucket_key, trade_count, win_count, win_rate, total_pnl, mean_pnl, mean_return_pct
from simulation_trade_buckets where simulation_id = %s
order by case bucket_type when 'all' then 0 when 'side' then 1 else 2 end, bucket_key
"""


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for key in ("started_at", "completed_at", "created_at", "updated_at"):
        out[key] = utc(row[key])
    return out


def list_simulations(*, run: str | None, dataset: str | None, limit: int, offset: int,
                     sort: SimulationSort | str, dataset_must_exist: bool = False, filter_text: str | None = None,
                     cursor: str | None = None) -> SimulationList:
    """Simulations, filtered and paged (by offset, or by `cursor`: stable under any sort). With
    `dataset_must_exist` an unknown dataset is a 404."""
    where = Where(limit=limit + 1, offset=offset)  # one more row tells whether a next page exists
    if run is not None:
        where.add("s.run_id = %(run)s", run=parse_uuid(run, "run_id"))
    if dataset is not None:
        filter_by(where, dataset, id_column="s.dataset_id", slug_column="d.dataset_slug")
    found = prepare(FIELDS, where, filter_text=filter_text, sort=sort, cursor=cursor, legacy=SORTS, offset=offset)
    params = where.params
    with db.connection() as conn:
        if dataset_must_exist and dataset is not None:
            find_dataset(conn, dataset)
        total = conn.execute(sql.SQL(_COUNT + found.count_clause), params).fetchone()
        rows, cut = db.fetch_within(conn, sql.SQL(_COLUMNS + found.rank.select() + _JOIN  # noqa: S608
                                                  + found.page_clause + " order by " + found.rank.order_by
                                                  + " limit %(limit)s offset %(offset)s"),
                                    params, get_settings().queries.page_max_bytes)
    # A page cut by bytes (configs are the client's JSON) ends early; the cursor goes on after its last row.
    next_cursor = found.next_cursor(rows, limit, "simulation_id", cut=cut)
    summaries = [SimulationSummary(**_summary({k: v for k, v in r.items() if not k.startswith("_k")}))
                 for r in rows[:limit]]
    return SimulationList(simulations=summaries, total=total["n"] if total else 0, limit=limit, offset=offset,
                          next_cursor=next_cursor)


def _detail(conn: Connection[Any], simulation_id: uuid.UUID) -> SimulationDetail:
    row = conn.execute(sql.SQL(_COLUMNS + versions.NOW_COLUMNS.format(record="s") + _JOIN  # noqa: S608 - constants
                               + " where s.simulation_id = %s"), (simulation_id,)).fetchone()
    if row is None:
        raise NotFound("simulation not found", {"simulation_id": str(simulation_id)})
    seen = versions.shown_fields(row)
    row = {k: v for k, v in row.items() if k not in versions.NOW_KEYS}
    buckets = conn.execute(_SELECT_BUCKETS, (simulation_id,)).fetchall()
    base = f"/api/simulations/{simulation_id}"
    links = SimulationLinks(self=base, trades=f"{base}/trades", dataset=f"/api/datasets/{row['dataset_id']}",
                            run=f"/api/runs/{row['run_id']}" if row["run_id"] else None)
    return SimulationDetail(**_summary(row), buckets=[Bucket(**b) for b in buckets], links=links, **seen)


def get_simulation(ref: str) -> SimulationDetail:
    simulation_id = parse_uuid(ref, "simulation_id")
    from_upload.settle(simulation_id)  # trades of an upload whose import ended: loaded now
    with db.connection() as conn:
        return _detail(conn, simulation_id)


def _owner(conn: Connection[Any], body: SimulationIn) -> tuple[uuid.UUID | None, uuid.UUID]:
    """(run_id, dataset_id) of a new simulation; unknown ones are 409 like a run's dataset."""
    if body.run_id is None and body.dataset_id is None:
        raise BadRequest("run_id or dataset_id is required", {"missing": ["run_id|dataset_id"]})
    dataset_id = None
    if body.dataset_id is not None:
        found = find(conn, body.dataset_id, columns="dataset_id", lock="share")
        if found is None:
            raise Conflict("unknown dataset_id", {"dataset_id": body.dataset_id})
        dataset_id = found["dataset_id"]
    if body.run_id is not None:
        run = conn.execute("select dataset_id from walkforward_runs where run_id = %s for share",
                           (body.run_id,)).fetchone()
        if run is None:
            raise Conflict("unknown run_id", {"run_id": str(body.run_id)})
        if dataset_id is not None and dataset_id != run["dataset_id"]:
            raise Conflict("the run belongs to another dataset",
                           {"run_id": str(body.run_id), "dataset_id": str(run["dataset_id"])})
        dataset_id = run["dataset_id"]
    assert dataset_id is not None
    return body.run_id, dataset_id


def _trade_rows(simulation_id: uuid.UUID, body: SimulationIn) -> list[tuple[Any, ...]]:
    rows, problems = [], []
    for i, t in enumerate(body.trades):
        try:
            micros = to_micros(t.bar_timestamp)
        except BadRequest:
            micros = -1
        if micros < 0:
            problems.append({"trade": i, "field": "bar_timestamp", "value": str(t.bar_timestamp)[:64]})
            continue
        rows.append((simulation_id, i, micros // 1_000_000, t.side, t.entry_price, t.exit_price, t.quantity, t.pnl,
                     t.return_pct, jsonb(t.extra)))
    if problems:
        raise BadRequest("invalid trades", {"problems": problems[:20], "problem_count": len(problems)})
    return rows


def create_simulation(body: SimulationIn) -> SimulationDetail:
    """Record, trades and buckets in one Postgres transaction; with `trades_upload_id` RUNNING until
    the upload's trades are loaded (`stage1.simulations.from_upload`)."""
    if body.trades_upload_id is not None:
        return get_simulation(str(from_upload.create(body, _owner)))
    if body.upload_id is not None:
        raise BadRequest("upload_id is not supported on POST /api/simulations: give an upload of kind trades as "
                         "trades_upload_id, or send the trades inline", {"field": "upload_id"})
    simulation_id = body.simulation_id or uuid.uuid4()
    trades = _trade_rows(simulation_id, body)
    with db.connection() as conn, conn.transaction():
        run_id, dataset_id = _owner(conn, body)
        store.insert_record(conn, simulation_id, run_id, dataset_id, body, status="COMPLETED",
                            trade_count=len(trades), completed_now=True,
                            dataset_version=jsonb(versions.seen(conn, dataset_id)))  # which data it saw: now
        with conn.cursor() as cur, cur.copy(
            "copy simulation_trades (simulation_id, trade_index, bar_timestamp, side, entry_price, exit_price, "
            "quantity, pnl, return_pct, extra) from stdin"
        ) as copy:
            for row in trades:
                copy.write_row(row)
        conn.execute(_BUCKETS, {"id": simulation_id})
        return _detail(conn, simulation_id)


def delete_simulation(ref: str) -> SimulationDeleted:
    simulation_id = parse_uuid(ref, "simulation_id")
    with db.connection() as conn, conn.transaction():
        row = conn.execute("delete from simulation_runs where simulation_id = %s returning trade_count",
                           (simulation_id,)).fetchone()
    if row is None:
        raise NotFound("simulation not found", {"simulation_id": str(simulation_id)})
    return SimulationDeleted(simulation_id=simulation_id, deleted=True, trades_deleted=row["trade_count"])


def read_trades(ref: str, *, fmt: Literal["json", "csv"], side: str | None, from_s: int | None, to_s: int | None,
                limit: int | None, offset: int) -> TradeList | CsvBody:
    """Trades ordered by time (`bar_timestamp`, then `trade_index`). The one place they are read
    (a later size-threshold → export-job path hooks in here)."""
    if from_s is not None and to_s is not None and from_s > to_s:
        raise BadRequest("from is after to", {"from": from_s, "to": to_s})
    simulation_id = parse_uuid(ref, "simulation_id")
    where = (Where().eq("simulation_id", "id", simulation_id).eq("side", "side", side)
             .compare("bar_timestamp", ">=", "from", from_s).compare("bar_timestamp", "<=", "to", to_s))
    clause, params = where.sql(), where.params
    order = " order by bar_timestamp, trade_index"
    from_upload.settle(simulation_id)
    with db.connection() as conn:
        from_upload.require_whole(conn, simulation_id)  # 404, or 409 until its trades are all there
        if fmt == "json":
            size = limit or 1000
            count_sql = "select count(*) as n from simulation_trades" + clause  # noqa: S608 - constant parts
            page_sql = _TRADES + clause + order + " limit %(limit)s offset %(offset)s"
            total = conn.execute(sql.SQL(count_sql), params).fetchone()
            rows, _ = db.fetch_within(conn, sql.SQL(page_sql), {**params, "limit": size, "offset": offset},
                                      get_settings().queries.page_max_bytes)
            n = total["n"] if total else 0
            return TradeList(simulation_id=simulation_id, trades=[Trade(**r) for r in rows], total=n, limit=size,
                             offset=offset, next_offset=next_offset(offset, len(rows), n))
    page = ""
    if limit is not None:
        page += " limit %(limit)s"
        params["limit"] = limit
    if offset:
        page += " offset %(offset)s"
        params["offset"] = offset
    query = _TRADES + clause + order + page
    return CsvBody(f"simulation_{simulation_id}_trades.csv", neutralise_csv(_copy_csv(query, params)))


def _copy_csv(query: str, params: dict[str, Any]) -> Iterator[bytes]:
    """Stream `COPY (query) TO STDOUT` as CSV with a header; holds a pooled connection while it runs."""
    with db.connection() as conn, conn.cursor() as cur, cur.copy(
        sql.SQL("copy ({}) to stdout with (format csv, header true)").format(sql.SQL(query)), params,  # type: ignore[arg-type]
    ) as copy:
        for chunk in copy:
            yield bytes(chunk)
