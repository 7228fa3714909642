"""Runs function: walk-forward runs (Postgres rows) and their predictions (a QuestDB table)."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Request, Response, delete, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery, JSONBody, PathParameter, QueryParameter

from stage1.core.errors import ErrorBody
from stage1.core.threads import in_thread
from stage1.runs import compare, incremental, service
from stage1.runs.schemas import (
    DownsampledPredictions,
    FoldsAdded,
    FoldsIn,
    Predictions,
    RunComplete,
    RunCreated,
    RunDeleted,
    RunDetail,
    RunIn,
    RunList,
    RunStatus,
    RunSummary,
)
from stage1.web.app import create_app, make_handler
from stage1.web.deprecation import alias_route, deprecated, deprecated_list
from stage1.web.large_reads import large_resource_read
from stage1.web.openapi import LARGE_READ, JsonOrCsvOperation
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
    Search,
    SortKey,
    ToTs,
    TsUnit,
)
from stage1.web.responses import respond
from stage1_wire.compare import RunComparison

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
    return Response(created, status_code=202 if created.status == "RUNNING" and created.job_id else 201)


# ---- compare (declared before /api/runs/{run_id} so "compare" is never read as a run id)
RunIds = Annotated[str, QueryParameter(min_length=1, max_length=50 * 40, description=(
    "2 to 50 distinct run UUIDs, comma-separated (more, a repeat or a non-UUID: 400; unknown: 404 naming them)"))]
CompareFormat = Annotated[Literal["json", "csv"], QueryParameter(
    name="format", description="json (the table) or csv (key, section, differs, then one column per run)")]


@get("/api/runs/compare", summary="Compare runs: every hyperparameter, walk-config key, summary metric and fold "
     "metric of 2-50 runs as one table (rows = keys, columns = runs), with which keys differ",
     description="Nested objects are flattened to dotted keys (at most 6 levels); `folds.<n>.metrics.<key>` per fold "
     "and `folds.metrics.<key>.mean|min|max` over a run's folds. format=csv answers the same table as CSV. "
     "A table above the response cap is 413.", tags=["runs"], operation_class=JsonOrCsvOperation,
     responses={404: ResponseSpec(ErrorBody, description="Some run_ids are unknown (named in details.run_ids)",
                                  generate_examples=False),
                413: ResponseSpec(ErrorBody, description="The table is larger than the response cap",
                                  generate_examples=False)})
async def compare_runs(run_ids: RunIds, fmt: CompareFormat = "json") -> Response[RunComparison]:
    return respond(await in_thread(compare.compare_runs, run_ids, fmt=fmt))


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
                      timestamp_unit: TsUnit = "s", mode: ModeParam = "auto",
                      max_points: MaxPoints = None) -> Response[Predictions | DownsampledPredictions]:
    return await large_resource_read(request, "runs.predictions", mode=mode, run_ref=run_id, fmt=fmt, fold=fold,
                                     from_s=from_, to_s=to, limit=limit, offset=offset, unit=timestamp_unit,
                                     max_points=max_points)


# ---- incremental runs (POST /api/runs with "status": "RUNNING", then folds, then complete)
# Their errors are the app's default envelope (4XX/5XX; an explicit ErrorBody ResponseSpec would be a second
# schema in the merged spec), named in the description.
_ERRORS_TEXT = (" Errors: 404 no such run; 409 the run is not an incremental RUNNING run, a fold was stored "
                "with other data, or (complete) the table holds rows of folds never recorded; 503 QuestDB did "
                "not answer within the request's budget (nothing became visible).")


@post("/api/runs/{run_id:str}/folds", status_code=200, summary="Add completed folds (and their predictions) to "
      "a RUNNING run", description="Each fold becomes visible in GET /api/runs/{run_id} only once its predictions "
      "are applied in QuestDB. Re-sending a stored fold with the same data is a no-op (200, `unchanged`); with "
      "other data 409." + _ERRORS_TEXT, **BLOCKING)
def add_folds(run_id: RunId, data: JSONBody[FoldsIn]) -> FoldsAdded:
    return incremental.add_folds(run_id, data)


@post("/api/runs/{run_id:str}/complete", status_code=200, summary="Complete a RUNNING run (final summary_metrics)",
      description="RUNNING → COMPLETED; the predictions become readable. Completing again with the same summary "
      "answers the run; with another, 409." + _ERRORS_TEXT, **BLOCKING)
def complete_run(run_id: RunId, data: JSONBody[RunComplete]) -> RunDetail:
    return incremental.complete(run_id, data)


# ---- the older backend's read paths (Stage 1.3 report): deprecated aliases of GET /api/runs[/{run_id}]
@get("/api/walkforward/runs", summary="Deprecated: GET /api/runs as a bare JSON array (total in X-Total-Count)",
     **alias_route("runs", listing=True))
def legacy_list_runs(limit: Limit = 100, offset: Offset = 0) -> Response[list[RunSummary]]:
    page = service.list_runs(dataset=None, status=None, measurement=None, search=None, limit=limit, offset=offset,
                             sort="-created_at")
    return deprecated_list(page.runs, page, "/api/runs", "/api/walkforward/runs")


@get("/api/walkforward/runs/{run_id:str}", summary="Deprecated: GET /api/runs/{run_id} (the run with its folds)",
     **alias_route("runs"))
def legacy_get_run(run_id: RunId) -> Response[RunDetail]:
    run = service.get_run(run_id)
    return deprecated(run, f"/api/runs/{run.run_id}")


app = create_app(
    [list_runs, create_run, compare_runs, get_run, delete_run, predictions, add_folds, complete_run,
     legacy_list_runs, legacy_get_run],
    title="Stage1 walk-forward runs",
    description="Walk-forward runs: folds in Postgres, predictions in QuestDB. See docs/resources.md.",
)
handler = make_handler(app)
