"""Uploads function: presigned uploads (single POST or multipart), their completion/nudge, and
the inline imports `POST /api/questdb/import` (blocking) and `/api/questdb/import/async`."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Request, get, post
from litestar.params import JSONBody, PathParameter, QueryParameter

from stage1.core.errors import BadRequest
from stage1.core.settings import get_settings
from stage1.core.threads import in_thread
from stage1.jobs.schemas import JobAccepted
from stage1.uploads import service
from stage1.uploads.schemas import (
    GRANULARITY_PATTERN,
    CompleteRequest,
    DatasetUploadRequest,
    InlineImportRequest,
    InlineImportResult,
    UploadCompleted,
    UploadCreated,
    UploadRequest,
    UploadStatus,
)
from stage1.web.app import create_app, make_handler
from stage1.web.bodies import decode_strict, refuse_large
from stage1.web.guards import request_caller
from stage1.web.params import DatasetRef

Kind = Annotated[Literal["ohlcv", "indicators", "predictions", "trades", "raw"] | None, QueryParameter()]
Format = Annotated[Literal["csv", "csv.gz", "parquet", "arrow"] | None, QueryParameter()]
Measurement = Annotated[str | None, QueryParameter(max_length=63)]
Granularity = Annotated[str | None, QueryParameter(max_length=16, pattern=GRANULARITY_PATTERN)]
UploadId = Annotated[str, PathParameter(description="upload UUID", max_length=64)]


# A declaration is decoded strictly (msgspec's JSON types: "1000", "1e3" or 100.0 are not a size), where
# Litestar's own decoding of `data` converts numeric strings; `data` stays for the OpenAPI schema.
@post("/api/uploads", summary="Start an upload: presigned URL(s) and the import job", tags=["uploads"],
      status_code=201)
async def create_upload(request: Request, data: JSONBody[UploadRequest]) -> UploadCreated:
    strict = decode_strict(await request.body(), UploadRequest)
    return await in_thread(service.create_upload, strict)


@post("/api/datasets/{dataset_id:str}/uploads", summary="Start an upload of a dataset's OHLCV or indicators",
      tags=["uploads"], status_code=201)
async def create_dataset_upload(request: Request, dataset_id: DatasetRef,
                                data: JSONBody[DatasetUploadRequest]) -> UploadCreated:
    strict = decode_strict(await request.body(), DatasetUploadRequest)
    return await in_thread(service.create_dataset_upload, dataset_id, strict)


@post("/api/uploads/{upload_id:str}/complete", summary="Complete a multipart upload; nudge the import",
      tags=["uploads"], status_code=200)
async def complete_upload(upload_id: UploadId, request: Request) -> UploadCompleted:
    # The body is optional (a bare nudge), so it is read here rather than typed.
    body = decode_strict(await request.body(), CompleteRequest)
    return await in_thread(service.complete_upload, upload_id, body)


@get("/api/uploads/{upload_id:str}", summary="An upload: its job, and each chunk's state and the missing chunks",
     tags=["uploads"], sync_to_thread=True)
def get_upload(upload_id: UploadId, request: Request) -> UploadStatus:
    return service.upload_status(upload_id, request_caller(request))


@post("/api/uploads/{upload_id:str}/resume",
      summary="Resume a chunked or multipart upload: PUT URLs for the missing chunks or parts",
      tags=["uploads"], status_code=200, sync_to_thread=True)
def resume_upload(upload_id: UploadId, request: Request) -> UploadStatus:
    return service.resume_upload(upload_id, request_caller(request))


def _inline(content_type: str, data: bytes, measurement: str | None, kind: str | None, format: str | None,
            granularity: str | None) -> dict:
    if content_type.split(";")[0].strip().lower() == "application/json":
        body = decode_strict(data, InlineImportRequest)
        return {"body": body.data.encode(), "measurement": body.measurement, "kind": kind or body.kind,
                "fmt": "csv", "granularity": granularity or body.granularity}
    if not measurement:
        raise BadRequest("measurement is required", {"field": "measurement"})
    return {"body": data, "measurement": measurement, "kind": kind or "raw", "fmt": format,
            "content_type": content_type, "granularity": granularity}


@post("/api/questdb/import", summary="Import a small CSV/Arrow/Parquet body and wait for it", tags=["questdb"],
      status_code=200)
async def import_blocking(request: Request, measurement: Measurement = None, kind: Kind = None,
                          format: Format = None, granularity: Granularity = None) -> InlineImportResult:
    refuse_large(request.headers, get_settings().imports.inline_import_max_bytes,
                 "body too large for a blocking import: upload the file or use /api/questdb/import/async")
    body = await request.body()
    args = _inline(request.headers.get("content-type", ""), body, measurement, kind, format, granularity)
    return await in_thread(service.import_blocking, **args)


@post("/api/questdb/import/async", summary="Import a CSV/Arrow/Parquet body as a job", tags=["questdb"],
      status_code=202)
async def import_async(request: Request, measurement: Measurement = None, kind: Kind = None,
                       format: Format = None, granularity: Granularity = None) -> JobAccepted:
    body = await request.body()
    args = _inline(request.headers.get("content-type", ""), body, measurement, kind, format, granularity)
    return await in_thread(service.import_async, **args)


app = create_app([create_upload, create_dataset_upload, complete_upload, get_upload, resume_upload, import_blocking,
                  import_async],
                 title="Stage1 uploads and imports")
handler = make_handler(app)
