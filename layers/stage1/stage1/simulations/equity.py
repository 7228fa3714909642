"""The equity curve of a simulation: cumulative PnL of its trades (Postgres), optionally at chart resolution.

The running sum is a window over *all* the simulation's trades in (`bar_timestamp`, `trade_index`) order
(a null pnl counts as 0), and only then cut to `from`/`to`, so the curve inside a window starts at the
equity the earlier trades left. With `max_points=N` the trades are grouped into buckets of a whole
number of seconds, the same rule as the QuestDB reads (`stage1.timeseries.downsample.bucket_seconds`:
counted from the first trade in the window, span / width < N, so at most N buckets): each bucket gives
its start (`timestamp`; widths of an hour or more are whole hours from the hour of the first trade),
the last equity, its min and max (a drawdown inside a bucket stays visible)
and the number of trades. All SQL is constant text with bind parameters.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from psycopg import sql

from stage1.core import db
from stage1.core.csvtext import CsvBody, csv_lines
from stage1.core.errors import BadRequest
from stage1.core.paging import next_offset, page_limit
from stage1.core.refs import parse_uuid
from stage1.core.where import Where
from stage1.simulations import from_upload
from stage1.simulations.schemas import EquityCurve
from stage1.simulations.service import _copy_csv as copy_csv  # the trades' COPY stream, one copy of it
from stage1.timeseries.downsample import MICROS, buckets, csv_headers

POINT_COLUMNS = ["timestamp", "trade_index", "pnl", "equity"]
BUCKET_COLUMNS = ["timestamp", "equity", "equity_min", "equity_max", "trades"]
_CURVE = """
with e as (
  select simulation_id, bar_timestamp, trade_index, pnl,
         sum(coalesce(pnl, 0)) over (order by bar_timestamp, trade_index rows unbounded preceding) as equity
  from simulation_trades where simulation_id = %(id)s)
"""
_POINTS = "select bar_timestamp as timestamp, trade_index, pnl, equity from e"
_BUCKETS = """
select %(lo)s::bigint + k * %(width)s::bigint as timestamp,
       (array_agg(equity order by bar_timestamp desc, trade_index desc))[1] as equity,
       min(equity) as equity_min, max(equity) as equity_max, count(*) as trades
from (select (bar_timestamp - %(lo)s::bigint) / %(width)s::bigint as k, bar_timestamp, trade_index, equity
      from e{where}) b
group by k order by k
"""


def read_equity(ref: str, *, fmt: Literal["json", "csv"], from_s: int | None, to_s: int | None,
                limit: int | None, offset: int, max_points: int | None = None) -> EquityCurve | CsvBody:
    if from_s is not None and to_s is not None and from_s > to_s:
        raise BadRequest("from is after to", {"from": from_s, "to": to_s})
    simulation_id = parse_uuid(ref, "simulation_id")
    where = (Where().eq("simulation_id", "id", simulation_id).compare("bar_timestamp", ">=", "from", from_s)
             .compare("bar_timestamp", "<=", "to", to_s))
    clause, params = where.sql(), where.params
    filename = f"simulation_{simulation_id}_equity.csv"
    from_upload.settle(simulation_id)
    with db.connection() as conn:
        from_upload.require_whole(conn, simulation_id)  # 404, or 409 until its trades are all there
        if max_points is not None:
            return _buckets(conn, simulation_id, clause, params, fmt=fmt, limit=limit, offset=offset,
                            max_points=max_points, filename=filename)
    if fmt == "csv":  # one trade a line, streamed by COPY like the trades' CSV (numbers only: nothing to neutralise)
        page = ""
        if limit is not None:
            page, params["limit"] = " limit %(limit)s", limit
        if offset:
            page, params["offset"] = page + " offset %(offset)s", offset
        query = _CURVE + _POINTS + clause + " order by bar_timestamp, trade_index" + page
        return CsvBody(filename, copy_csv(query, params))
    with db.connection() as conn:
        size = page_limit(limit or 1000, len(POINT_COLUMNS))
        total = conn.execute(sql.SQL("select count(*) as n from simulation_trades" + clause),  # noqa: S608 - constant parts
                             params).fetchone()
        page = conn.execute(sql.SQL(_CURVE + _POINTS + clause + " order by bar_timestamp, trade_index "
                                    "limit %(limit)s offset %(offset)s"),
                            {**params, "limit": size, "offset": offset}).fetchall()
    n = total["n"] if total else 0
    return EquityCurve(simulation_id=simulation_id, columns=POINT_COLUMNS, points=[dict(r) for r in page], total=n,
                       limit=size, offset=offset, next_offset=next_offset(offset, len(page), n))


def _buckets(conn: Any, simulation_id: uuid.UUID, clause: str, params: dict[str, Any], *, fmt: str,
             limit: int | None, offset: int, max_points: int, filename: str) -> EquityCurve | CsvBody:
    span = conn.execute(sql.SQL("select min(bar_timestamp) as lo, max(bar_timestamp) as hi "  # noqa: S608 - constant
                                "from simulation_trades" + clause), params).fetchone()
    rows: list[dict[str, Any]] = []
    width: int | None = None
    if span and span["lo"] is not None:
        origin_us, width = buckets(span["lo"] * MICROS, span["hi"] * MICROS, max_points)
        query = sql.SQL(_CURVE + _BUCKETS.format(where=clause))
        rows = conn.execute(query, {**params, "lo": origin_us // MICROS, "width": width}).fetchall()
        if len(rows) > max_points:  # cannot happen by the width rule; never answer more than asked
            raise AssertionError(f"{len(rows)} equity buckets for max_points={max_points}")
    if fmt == "csv":
        lines = [[b[c] for c in BUCKET_COLUMNS] for b in rows[offset:offset + (limit or max_points)]]
        return CsvBody(filename, csv_lines(BUCKET_COLUMNS, iter(lines)), csv_headers(width))
    size = page_limit(min(limit or max_points, max_points), len(BUCKET_COLUMNS))
    page = [dict(b) for b in rows[offset:offset + size]]
    return EquityCurve(simulation_id=simulation_id, columns=BUCKET_COLUMNS, points=page, total=len(rows),
                       limit=size, offset=offset, next_offset=next_offset(offset, len(page), len(rows)),
                       downsampled=True, bucket_seconds=width, max_points=max_points)
