"""Datasets function: the dataset triplet (Postgres row + OHLCV and indicator tables in QuestDB)."""

from __future__ import annotations

from typing import Annotated

from litestar import Request, Response, delete, get, post
from litestar.openapi import ResponseSpec
from litestar.params import FromQuery, JSONBody, QueryParameter

from stage1.core.threads import in_thread
from stage1.datasets import service
from stage1.datasets.schemas import (
    Dataset,
    DatasetDeleted,
    DatasetIn,
    DatasetList,
    DatasetSort,
    DownsampledRows,
    Rows,
)
from stage1.datasets.versions import DatasetVersionList
from stage1.runs import service as runs
from stage1.runs.schemas import RunList, RunSort, RunStatus
from stage1.simulations import service as simulations
from stage1.simulations.schemas import SimulationList, SimulationSort
from stage1.web.app import create_app, make_handler
from stage1.web.deprecation import alias_route, deprecated, deprecated_list
from stage1.web.large_reads import large_resource_read
from stage1.web.openapi import LARGE_READ
from stage1.web.params import (
    DatasetRef,
    Format,
    FromTs,
    Limit,
    MaxPoints,
    ModeParam,
    Offset,
    RowLimit,
    Search,
    ToTs,
    TsUnit,
)

Label = Annotated[str | None, QueryParameter(max_length=64)]
Columns = Annotated[list[str] | None, QueryParameter(
    name="columns", description="columns to return (repeat the parameter or separate with commas)")]
BLOCKING = {"sync_to_thread": True, "tags": ["datasets"]}


@get("/api/datasets", summary="List datasets", **BLOCKING)
def list_datasets(symbol: Label = None, granularity: Label = None, search: Search = None, limit: Limit = 100,
                  offset: Offset = 0, sort: FromQuery[DatasetSort] = "-created_at") -> DatasetList:
    return service.list_datasets(symbol=symbol, granularity=granularity, search=search, limit=limit, offset=offset,
                                 sort=sort)


@post("/api/datasets", summary="Create or update a dataset by slug (201 created, 200 updated)", tags=["datasets"],
      responses={200: ResponseSpec(Dataset, description="An existing dataset (same slug) updated",
                                   generate_examples=False)})
async def upsert_dataset(data: JSONBody[DatasetIn], record_questdb: FromQuery[bool] = False) -> Response[Dataset]:
    dataset, created = await in_thread(service.upsert_dataset, data, record_questdb=record_questdb)
    return Response(dataset, status_code=201 if created else 200)


@get("/api/datasets/{dataset_id:str}", summary="One dataset, with its live QuestDB state", **BLOCKING)
def get_dataset(dataset_id: DatasetRef) -> Dataset:
    return service.get_dataset(dataset_id)


@get("/api/datasets/{dataset_id:str}/versions", summary="The dataset's content versions, newest first (paged)",
     description="A version is recorded when an import (or POST /api/datasets with record_questdb=true) changes "
     "the content fingerprint of the dataset's OHLCV or indicator table; re-importing the same data records "
     "nothing; an unknown dataset is 404. See docs/resources.md, 'Dataset versions and fingerprints'.",
     **BLOCKING)
def dataset_versions(dataset_id: DatasetRef, limit: Limit = 100, offset: Offset = 0) -> DatasetVersionList:
    return service.dataset_versions(dataset_id, limit=limit, offset=offset)


@delete("/api/datasets/{dataset_id:str}", status_code=200, summary="Delete a dataset (409 while runs reference it)",
        **BLOCKING)
def delete_dataset(dataset_id: DatasetRef, cascade: FromQuery[bool] = False,
                   drop_questdb: FromQuery[bool] = False) -> DatasetDeleted:
    return service.delete_dataset(dataset_id, cascade=cascade, drop_questdb=drop_questdb)


@get("/api/datasets/{dataset_id:str}/runs", summary="The runs of one dataset", **BLOCKING)
def dataset_runs(dataset_id: DatasetRef, status: FromQuery[RunStatus | None] = None, search: Search = None,
                 limit: Limit = 100, offset: Offset = 0, sort: FromQuery[RunSort] = "-created_at") -> RunList:
    return runs.list_runs(dataset=dataset_id, status=status, measurement=None, search=search, limit=limit,
                          offset=offset, sort=sort, dataset_must_exist=True)


@get("/api/datasets/{dataset_id:str}/simulations", summary="The simulations of one dataset", **BLOCKING)
def dataset_simulations(dataset_id: DatasetRef, limit: Limit = 100, offset: Offset = 0,
                        sort: FromQuery[SimulationSort] = "-created_at") -> SimulationList:
    return simulations.list_simulations(run=None, dataset=dataset_id, limit=limit, offset=offset, sort=sort,
                                        dataset_must_exist=True)


@get("/api/datasets/{dataset_id:str}/ohlcv", summary="OHLCV rows (JSON page or CSV)", tags=["datasets"], **LARGE_READ)
async def ohlcv(request: Request, dataset_id: DatasetRef, fmt: Format = "json", from_: FromTs = None,
                to: ToTs = None, columns: Columns = None, limit: RowLimit = None, offset: Offset = 0,
                timestamp_unit: TsUnit = "s", mode: ModeParam = "auto",
                max_points: MaxPoints = None) -> Response[Rows | DownsampledRows]:
    return await large_resource_read(request, "datasets.rows", mode=mode, ref=dataset_id, which="ohlcv", from_s=from_,
                                     to_s=to, columns=columns, fmt=fmt, limit=limit, offset=offset, unit=timestamp_unit,
                                     max_points=max_points)


@get("/api/datasets/{dataset_id:str}/indicators", summary="Indicator rows (JSON page or CSV)", tags=["datasets"],
     **LARGE_READ)
async def indicators(request: Request, dataset_id: DatasetRef, fmt: Format = "json", from_: FromTs = None,
                     to: ToTs = None, columns: Columns = None, limit: RowLimit = None, offset: Offset = 0,
                     timestamp_unit: TsUnit = "s", mode: ModeParam = "auto",
                     max_points: MaxPoints = None) -> Response[Rows | DownsampledRows]:
    return await large_resource_read(request, "datasets.rows", mode=mode, ref=dataset_id, which="indicator",
                                     from_s=from_, to_s=to, columns=columns, fmt=fmt, limit=limit, offset=offset,
                                     unit=timestamp_unit, max_points=max_points)


# ---- the older backend's read paths (Stage 1.3 report): deprecated aliases of GET /api/datasets[/{id}]
@get("/api/indicators/datasets", summary="Deprecated: GET /api/datasets as a bare JSON array (total in "
     "X-Total-Count)", **alias_route("datasets", listing=True))
def legacy_list_datasets(limit: Limit = 100, offset: Offset = 0) -> Response[list[Dataset]]:
    page = service.list_datasets(symbol=None, granularity=None, search=None, limit=limit, offset=offset,
                                 sort="-created_at")
    return deprecated_list(page.datasets, page, "/api/datasets", "/api/indicators/datasets")


@get("/api/indicators/datasets/{dataset_id:str}", summary="Deprecated: GET /api/datasets/{dataset_id}",
     **alias_route("datasets"))
def legacy_get_dataset(dataset_id: DatasetRef) -> Response[Dataset]:
    dataset = service.get_dataset(dataset_id)
    return deprecated(dataset, f"/api/datasets/{dataset.dataset_id}")


app = create_app(
    [list_datasets, upsert_dataset, get_dataset, delete_dataset, dataset_runs, dataset_simulations, ohlcv,
     indicators, legacy_list_datasets, legacy_get_dataset, dataset_versions],
    title="Stage1 datasets",
    description="Datasets: a Postgres row naming an OHLCV and an indicator table in QuestDB. See docs/resources.md.",
)
handler = make_handler(app)
