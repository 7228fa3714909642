"""Upload requests and responses (CONTRACT.md, Uploads). Unknown request fields are ignored."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from stage1_wire.base import Model

UploadKind = Literal["ohlcv", "indicators", "predictions", "trades", "raw"]
DatasetKind = Literal["ohlcv", "indicators"]
# Partitioning of a table an upload creates ("1m", "1h", "1d"); it reaches QuestDB's DDL and a JSON payload.
GRANULARITY_PATTERN = r"^[A-Za-z0-9]{0,16}$"
Granularity = Annotated[str, msgspec.Meta(pattern=GRANULARITY_PATTERN, max_length=16)]
# A chunked upload declares the byte size of each chunk, in order (each chunk a valid file on its own,
# cut at row boundaries by the client); their sum is `size`. The server's setting may allow fewer.
MAX_CHUNKS = 10_000
ChunkSizes = Annotated[list[Annotated[int, msgspec.Meta(gt=0)]], msgspec.Meta(max_length=MAX_CHUNKS)]


class UploadRequest(Model, kw_only=True):
    filename: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    size: Annotated[int, msgspec.Meta(gt=0)]
    kind: UploadKind
    measurement: Annotated[str, msgspec.Meta(min_length=1, max_length=63)]
    content_type: Annotated[str, msgspec.Meta(max_length=127)] = ""
    dataset_id: str | None = None
    # Partitioning of a table this upload creates (e.g. "1m", "1h"); a dataset's own granularity wins.
    granularity: Granularity | None = None
    # A chunked upload: each chunk's size in bytes (docs/imports.md, "Chunked uploads").
    chunks: ChunkSizes | None = None


class DatasetUploadRequest(Model, kw_only=True):
    filename: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    size: Annotated[int, msgspec.Meta(gt=0)]
    kind: DatasetKind = "ohlcv"
    content_type: Annotated[str, msgspec.Meta(max_length=127)] = ""
    # Defaults to the dataset's ohlcv_measurement / indicator_measurement.
    measurement: Annotated[str, msgspec.Meta(min_length=1, max_length=63)] | None = None
    chunks: ChunkSizes | None = None


class UploadPart(Model):
    part_number: int
    url: str
    # The exact bytes this part's URL accepts (its Content-Length is signed): part_size, the last one less.
    size: int | None = None


class UploadChunk(Model, kw_only=True):
    """One chunk's presigned PUT: exactly `size` bytes (the Content-Length is signed) to `object_key`."""

    index: int
    url: str
    size: int
    object_key: str


class UploadCreated(Model, kw_only=True):
    upload_id: str
    job_id: str
    url: str
    fields: dict[str, str] | None = None
    method: str
    expires_at: str
    object_key: str
    measurement: str
    kind: str
    format: str
    multipart: bool = False
    part_size: int | None = None
    parts: list[UploadPart] | None = None
    complete_url: str
    poll_url: str
    # Chunked uploads: the PUT URLs of the first chunks (at most 1,000 per answer; the rest from
    # POST /api/uploads/{id}/resume), and where to ask which chunks the server has.
    chunked: bool = False
    chunks: list[UploadChunk] | None = None
    chunk_count: int | None = None
    status_url: str | None = None


class CompletedPart(Model, kw_only=True):
    part_number: Annotated[int, msgspec.Meta(ge=1, le=10_000)]
    etag: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class CompleteRequest(Model, kw_only=True):
    # The ETags of the parts (from each PUT's ETag header); omitted: the server lists the parts.
    # Given, it names exactly the parts handed out (else 400); S3 allows at most 10,000.
    parts: Annotated[list[CompletedPart], msgspec.Meta(max_length=10_000)] | None = None


class UploadCompleted(Model, kw_only=True):
    upload_id: str
    job_id: str
    status: str
    uploaded: bool
    size: int | None = None
    poll_url: str
    message: str


class ChunkState(Model, kw_only=True):
    index: int
    size: int
    # PENDING (not imported: `arrived` says whether its object is in the bucket), IMPORTING, IMPORTED, FAILED
    state: str
    arrived: bool
    rows: int
    attempts: int
    error: str | None = None


class UploadStatus(Model, kw_only=True):
    """GET /api/uploads/{id}, POST /api/uploads/{id}/resume: what the server has of an upload."""

    upload_id: str
    job_id: str
    job_status: str
    status: str  # the upload's: CREATED, UPLOADED, REJECTED
    size: int
    chunked: bool
    expires_at: str | None = None
    rows: int = 0
    chunk_count: int = 0
    chunks_imported: int = 0
    # Chunks the server does not have (no object in the bucket and not imported), in order.
    missing: list[int] = msgspec.field(default_factory=list)
    chunks: list[ChunkState] | None = None
    # resume only: fresh PUT URLs for (at most 1,000 of) the missing chunks, in order.
    urls: list[UploadChunk] | None = None
    poll_url: str
    # A multipart upload (one object sent as parts): its part size and count, from the declaration.
    multipart: bool = False
    part_size: int | None = None
    part_count: int = 0
    # Multipart, resume only (GET reads Postgres alone and does not list the store: null there): the parts
    # the store does not have, in order, and fresh PUT URLs for (at most 1,000 of) them, each signed for
    # its exact `size`, as create's `parts`.
    parts_missing: list[int] | None = None
    parts: list[UploadPart] | None = None


class InlineImportRequest(Model, kw_only=True):
    """The JSON form of the inline imports (the desktop's older client): CSV text in `data`."""

    measurement: Annotated[str, msgspec.Meta(min_length=1, max_length=63)]
    data: str
    kind: UploadKind = "raw"
    granularity: Granularity | None = None


class InlineImportResult(Model, kw_only=True):
    job_id: str
    status: str
    measurement: str
    rows_written: int
    result: Any = None
