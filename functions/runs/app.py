"""Runs function: walk-forward runs (Postgres rows) and their predictions (a QuestDB table)."""

from __future__ import annotations

from typing import Annotated

from litestar import Request, Response, delete, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery, JSONBody, PathParameter, QueryParameter

from stage1.core.threads import in_thread
from stage1.runs import service
from stage1.runs.schemas import Predictions, RunCreated, RunDeleted, RunDetail, RunIn, RunList, RunStatus
from stage1.web.app import create_app, make_handler
from stage1.web.large_reads import large_resource_read
from stage1.web.openapi import LARGE_READ
from stage1.web.params import (
    Cursor,
    DatasetFilter,
    FilterExpr,
    Format,
    FromTs,
    Limit,
    ModeParam,
    Offset,
    RowLimit,
    Search,
    SortKey,
    ToTs,
    TsUnit,
)
from stage1.web.responses import respond

RunId = Annotated[str, PathParameter(description="run UUID", max_length=100)]
MeasurementFilter = Annotated[str | None, QueryParameter(pattern=r"^[a-z0-9_]{1,63}$", max_length=63,
                                                    description="exact prediction_measurement")]
FoldFilter = Annotated[int | None, QueryParameter(ge=0, le=2**31 - 1, description="only this fold_number")]
BLOCKING = {"sync_to_thread": True, "tags": ["runs"]}


@get("/api/runs", summary="List, search and rank walk-forward runs (filter=, sort= on any field, cursor paging)",
     description="`filter` and `sort` reach the run's columns, `summary_metrics.<key>`, `hyperparameters.<key>`, "
     "`walk_config.<key>` and `folds.metrics.<key>.mean|min|max` (docs/resources.md, \"Search and rank\"). "
     "Page by `offset` or by the `next_cursor` of the previous page.", **BLOCKING)
def list_runs(dataset_id: DatasetFilter = None, status: FromQuery[RunStatus | None] = None,
              measurement: MeasurementFilter = None, search: Search = None, limit: Limit = 100, offset: Offset = 0,
              sort: SortKey = "-created_at", filter_: FilterExpr = None, cursor: Cursor = None) -> RunList:
    return service.list_runs(dataset=dataset_id, status=status, measurement=measurement, search=search, limit=limit,
                             offset=offset, sort=sort, filter_text=filter_, cursor=cursor)


@post("/api/runs", summary="Store a run, its folds and its predictions as one unit (201; 202 with a job_id "
      "while the predictions of an upload_id are still importing)", tags=["runs"],
      responses={202: ResponseSpec(data_container=RunCreated, description="Run created; predictions importing")})
async def create_run(data: JSONBody[RunIn]) -> Response[RunCreated]:
    created = await in_thread(service.create_run, data)
    return Response(created, status_code=202 if created.status == "RUNNING" else 201)


@get("/api/runs/{run_id:str}", summary="One run with its folds (download_predictions=true: the predictions CSV)",
     tags=["runs"], **LARGE_READ)
async def get_run(request: Request, run_id: RunId, download_predictions: FromQuery[bool] = False,
                  mode: ModeParam = "auto") -> Response[RunDetail]:
    if download_predictions:  # large CSV: inline when small, else an export job (docs/questdb.md)
        return await large_resource_read(request, "runs.predictions", mode=mode, run_ref=run_id, fmt="csv", fold=None,
                                         from_s=None, to_s=None, limit=None, offset=0, unit="s")
    return respond(await in_thread(service.get_run, run_id))


@delete("/api/runs/{run_id:str}", status_code=200, summary="Delete a run and its predictions table", **BLOCKING)
def delete_run(run_id: RunId) -> RunDeleted:
    return service.delete_run(run_id)


@get("/api/runs/{run_id:str}/predictions", summary="Predictions (JSON page or CSV)", tags=["runs"], **LARGE_READ)
async def predictions(request: Request, run_id: RunId, fmt: Format = "json", fold: FoldFilter = None,
                      from_: FromTs = None, to: ToTs = None, limit: RowLimit = None, offset: Offset = 0,
                      timestamp_unit: TsUnit = "s", mode: ModeParam = "auto") -> Response[Predictions]:
    return await large_resource_read(request, "runs.predictions", mode=mode, run_ref=run_id, fmt=fmt, fold=fold,
                                     from_s=from_, to_s=to, limit=limit, offset=offset, unit=timestamp_unit)


app = create_app(
    [list_runs, create_run, get_run, delete_run, predictions],
    title="Stage1 walk-forward runs",
    description="Walk-forward runs: folds in Postgres, predictions in QuestDB. See docs/resources.md.",
)
handler = make_handler(app)
