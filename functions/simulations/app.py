"""Simulations function: simulation records, their trades and the aggregated trade buckets."""

from __future__ import annotations

from typing import Annotated

from litestar import Request, Response, delete, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, PathParameter, QueryParameter

from stage1.core.threads import in_thread
from stage1.simulations import service
from stage1.simulations.schemas import (
    EquityCurve,
    SimulationDeleted,
    SimulationDetail,
    SimulationIn,
    SimulationList,
    SimulationSummary,
    TradeList,
)
from stage1.web.app import create_app, make_handler
from stage1.web.deprecation import alias_route, deprecated, deprecated_list
from stage1.web.large_reads import large_resource_read
from stage1.web.openapi import LARGE_READ
from stage1.web.params import (
    Cursor,
    DatasetFilter,
    FilterExpr,
    Format,
    FromTs,
    Limit,
    MaxPoints,
    ModeParam,
    Offset,
    RowLimit,
    SortKey,
    ToTs,
)

SimulationId = Annotated[str, PathParameter(description="simulation UUID", max_length=100)]
RunFilter = Annotated[str | None, QueryParameter(description="run UUID", max_length=100)]
SideFilter = Annotated[str | None, QueryParameter(min_length=1, max_length=32, description="only trades of this side")]
BLOCKING = {"sync_to_thread": True, "tags": ["simulations"]}


@get("/api/simulations", summary="List, search and rank simulations (filter=, sort= on any field, cursor paging)",
     description="`filter` and `sort` reach the simulation's columns, `summary_metrics.<key>` and `config.<key>` "
     "(docs/resources.md, \"Search and rank\"). Page by `offset` or by the `next_cursor` of the previous page.",
     **BLOCKING)
def list_simulations(run_id: RunFilter = None, dataset_id: DatasetFilter = None, limit: Limit = 100,
                     offset: Offset = 0, sort: SortKey = "-created_at", filter_: FilterExpr = None,
                     cursor: Cursor = None) -> SimulationList:
    return service.list_simulations(run=run_id, dataset=dataset_id, limit=limit, offset=offset, sort=sort,
                                    filter_text=filter_, cursor=cursor)


@post("/api/simulations", summary="Store a simulation and its trades; the server aggregates the buckets (201; 202 "
      "RUNNING while the trades of a trades_upload_id are imported and loaded)", tags=["simulations"],
      description="Trades inline (`trades`, bounded by the 10 MB body) or from an upload of kind `trades` "
      "(`trades_upload_id`): the simulation is then RUNNING, its trades, equity and buckets answer 409 with the "
      "import job's poll_url until it is COMPLETED (or FAILED with the job's error). 409: an unknown run, dataset "
      "or trades_upload_id, or the upload's import FAILED or was CANCELLED; 400: its trades lack required columns "
      "(`details.missing_columns`). docs/resources.md.",
      responses={202: ResponseSpec(data_container=SimulationDetail, description="Simulation RUNNING; trades loading",
                                   generate_examples=False)})
async def create_simulation(data: JSONBody[SimulationIn]) -> Response[SimulationDetail]:
    created = await in_thread(service.create_simulation, data)
    return Response(created, status_code=201 if created.status == "COMPLETED" else 202)


@get("/api/simulations/{simulation_id:str}", summary="One simulation with its trade buckets", **BLOCKING)
def get_simulation(simulation_id: SimulationId) -> SimulationDetail:
    return service.get_simulation(simulation_id)


@delete("/api/simulations/{simulation_id:str}", status_code=200, summary="Delete a simulation and its trades",
        **BLOCKING)
def delete_simulation(simulation_id: SimulationId) -> SimulationDeleted:
    return service.delete_simulation(simulation_id)


@get("/api/simulations/{simulation_id:str}/trades", summary="Trades ordered by time (JSON page or CSV)",
     tags=["simulations"], **LARGE_READ)
async def trades(request: Request, simulation_id: SimulationId, fmt: Format = "json", side: SideFilter = None,
                 from_: FromTs = None, to: ToTs = None, limit: RowLimit = None, offset: Offset = 0,
                 mode: ModeParam = "auto") -> Response[TradeList]:
    return await large_resource_read(request, "simulations.trades", mode=mode, ref=simulation_id, fmt=fmt, side=side,
                                     from_s=from_, to_s=to, limit=limit, offset=offset)


@get("/api/simulations/{simulation_id:str}/equity",
     summary="Equity curve: cumulative PnL of the trades (JSON page or CSV; max_points downsamples)",
     tags=["simulations"], **LARGE_READ)
async def equity(request: Request, simulation_id: SimulationId, fmt: Format = "json", from_: FromTs = None,
                 to: ToTs = None, limit: RowLimit = None, offset: Offset = 0, mode: ModeParam = "auto",
                 max_points: MaxPoints = None) -> Response[EquityCurve]:
    return await large_resource_read(request, "simulations.equity", mode=mode, ref=simulation_id, fmt=fmt,
                                     from_s=from_, to_s=to, limit=limit, offset=offset, max_points=max_points)


# ---- the older backend's read paths (Stage 1.3 report): deprecated aliases of GET /api/simulations[/{id}]
@get("/api/tradesim/runs", summary="Deprecated: GET /api/simulations as a bare JSON array (total in X-Total-Count)",
     **alias_route("simulations", listing=True))
def legacy_list_simulations(limit: Limit = 100, offset: Offset = 0) -> Response[list[SimulationSummary]]:
    page = service.list_simulations(run=None, dataset=None, limit=limit, offset=offset, sort="-created_at")
    return deprecated_list(page.simulations, page, "/api/simulations", "/api/tradesim/runs")


@get("/api/tradesim/runs/{simulation_id:str}", summary="Deprecated: GET /api/simulations/{simulation_id} (the "
     "simulation with its trade buckets)", **alias_route("simulations"))
def legacy_get_simulation(simulation_id: SimulationId) -> Response[SimulationDetail]:
    simulation = service.get_simulation(simulation_id)
    return deprecated(simulation, f"/api/simulations/{simulation.simulation_id}")


app = create_app(
    [list_simulations, create_simulation, get_simulation, delete_simulation, trades, equity, legacy_list_simulations,
     legacy_get_simulation],
    title="Stage1 simulations",
    description="Simulations: records, trades and aggregated trade buckets in Postgres. See docs/resources.md.",
)
handler = make_handler(app)
