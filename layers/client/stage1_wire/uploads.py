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


class UploadRequest(Model, kw_only=True):
    filename: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    size: Annotated[int, msgspec.Meta(gt=0)]
    kind: UploadKind
    measurement: Annotated[str, msgspec.Meta(min_length=1, max_length=63)]
    content_type: Annotated[str, msgspec.Meta(max_length=127)] = ""
    dataset_id: str | None = None
    # Partitioning of a table this upload creates (e.g. "1m", "1h"); a dataset's own granularity wins.
    granularity: Granularity | None = None


class DatasetUploadRequest(Model, kw_only=True):
    filename: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    size: Annotated[int, msgspec.Meta(gt=0)]
    kind: DatasetKind = "ohlcv"
    content_type: Annotated[str, msgspec.Meta(max_length=127)] = ""
    # Defaults to the dataset's ohlcv_measurement / indicator_measurement.
    measurement: Annotated[str, msgspec.Meta(min_length=1, max_length=63)] | None = None


class UploadPart(Model):
    part_number: int
    url: str
    # The exact bytes this part's URL accepts (its Content-Length is signed): part_size, the last one less.
    size: int | None = None


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
