"""How the large-read contract appears in OpenAPI: a 200 that is a JSON page *or* the file itself
(CSV, Parquet), and a 202 with an export job. Litestar documents one media type per status from a
handler's return type; this Operation adds the file types, and `LARGE_READ_RESPONSES` the 202."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Operation, Schema

from stage1.exports.stream import MEDIA_TYPES
from stage1.jobs.schemas import JobAccepted

_FILE_SCHEMA = Schema(type=OpenAPIType.STRING, description="the file itself (streamed where the deployment can)")


@dataclass
class FileOrJobOperation(Operation):
    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse):
            content = dict(ok.content or {})
            for media_type in MEDIA_TYPES.values():
                content.setdefault(media_type, OpenAPIMediaType(schema=_FILE_SCHEMA))
            ok.content = content


LARGE_READ_RESPONSES = {
    202: ResponseSpec(JobAccepted, description="Too large to answer inline: an export job started; poll its "
                      "poll_url, the finished job's result.url downloads the file", generate_examples=False),
}
# The keyword arguments a route handler decorator takes for a read that follows the contract.
LARGE_READ = {"operation_class": FileOrJobOperation, "responses": LARGE_READ_RESPONSES}


@dataclass
class JsonOrCsvOperation(Operation):
    """A read whose `format=csv` answers the same data as CSV text, inline (never an export job)."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse):
            ok.content = {**(ok.content or {}), "text/csv": OpenAPIMediaType(schema=Schema(
                type=OpenAPIType.STRING, description="format=csv: the same table as CSV"))}
