"""Litestar responses built from service results: JSON, or a `CsvBody` streamed as a download."""

from __future__ import annotations

from typing import Any

from litestar import Response
from litestar.response import Stream

from stage1.core.csvtext import CsvBody


def file_headers(filename: str) -> dict[str, str]:
    """The headers of every file answer (a CSV read, an export): a download, never cached."""
    return {"content-disposition": f'attachment; filename="{filename}"', "cache-control": "no-store"}


def respond(result: Any) -> Response[Any]:
    """A service result as a response: CSV bodies are streamed, anything else is JSON. Handlers
    that can answer CSV are annotated `-> Response[<the JSON type>]`: Litestar picks its response
    path from the annotation (a sync_to_thread handler's return value is not inspected)."""
    if isinstance(result, CsvBody):
        return Stream(result.chunks, media_type="text/csv", headers=file_headers(result.filename))
    return Response(result)
