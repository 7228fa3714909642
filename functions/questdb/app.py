"""QuestDB function: table inspection, read-only SQL and exports (docs/questdb.md).

(/api/questdb/import* and /api/questdb/jobs/* are other functions' routes.)
"""

from typing import Annotated, Any, Literal

from litestar import Request, Response, get, post
from litestar.params import JSONBody, Parameter, PathParameter

from stage1.measurements.schemas import MeasurementDetail, MeasurementList
from stage1.measurements.service import get_measurement, list_measurements
from stage1.sql import service as sql
from stage1.sql.schemas import ExportIn, QueryIn, QueryOut
from stage1.web.app import create_app, make_handler
from stage1.web.large_reads import large_read
from stage1.web.openapi import LARGE_READ

Prefix = Annotated[str | None, Parameter(pattern=r"^[a-z0-9_]{0,63}$", description="Name prefix, [a-z0-9_]")]
Sample = Annotated[int, Parameter(ge=0, le=100, description="How many of the latest rows to include")]
RowLimit = Annotated[int | None, Parameter(ge=1, le=1_000_000, description="Rows to return (capped by the server)")]
# Maxima come from settings at request time (a larger value is a 400 naming the maximum).
QueryTimeout = Annotated[float | None, Parameter(gt=0, description="Seconds before the query is cancelled (default "
                                                 "20, at most 25: the API function's own limit is 29)")]
ExportTimeout = Annotated[float | None, Parameter(gt=0, description="Seconds for the export: inline at most 25 "
                                                  "(default 20); an export job at most 840 (default 300)")]
Mode = Annotated[Literal["auto", "inline", "job"], Parameter(description="auto: inline if small, else a job")]
Name = Annotated[str, PathParameter(description="Measurement (table) name, [a-z0-9_]")]


@get("/api/questdb/measurements", summary="QuestDB tables with row counts and bounds", tags=["questdb"],
     sync_to_thread=True)
def measurements(prefix: Prefix = None) -> MeasurementList:
    return list_measurements(prefix or None)


@get("/api/questdb/measurement/{name:str}", summary="One QuestDB table: columns, WAL/dedup state, sample rows",
     tags=["questdb"], sync_to_thread=True)
def measurement(name: Name, sample: Sample = 5) -> MeasurementDetail:
    return get_measurement(name, sample=sample)


@post("/api/questdb/query", summary="Read-only SQL → JSON rows (limited)", tags=["questdb"], status_code=200,
      sync_to_thread=True)
def query(data: JSONBody[QueryIn], limit: RowLimit = None, timeout: QueryTimeout = None) -> QueryOut:
    return sql.query(data.sql, body_limit=data.limit, limit=limit, timeout=timeout)


@post("/api/questdb/export", summary="Read-only SQL → CSV/Parquet (inline, streamed locally, or an export job)",
      tags=["questdb"], status_code=200, **LARGE_READ)
async def export(request: Request[Any, Any, Any], data: JSONBody[ExportIn], mode: Mode = "auto",
                 timeout: ExportTimeout = None) -> Response[Any]:
    return await large_read(request, data.sql, fmt=data.format, mode=mode, timeout=timeout,
                            filename=data.filename or "export", source={"endpoint": "/api/questdb/export"})


app = create_app([measurements, measurement, query, export], title="Stage1 QuestDB")
handler = make_handler(app)
