"""The one place that maps exceptions to HTTP responses.

Services raise `stage1.core.errors` exceptions (and backing-service errors escape as their own
types); `stage1.core.errors.to_stage1_error` classifies them, this module turns the result, and
Litestar's own HTTP exceptions (a 400 for bad parameters, never a 422), into the error envelope."""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException

from stage1.core.errors import ErrorBody, HttpError, Stage1Error, to_stage1_error


def error_response(exc: Stage1Error) -> Response[ErrorBody]:
    return Response(exc.body(), status_code=exc.status_code, headers=exc.headers(), media_type=MediaType.JSON)


def _from_http_exception(exc: HTTPException) -> Stage1Error:
    if isinstance(exc, ValidationException):
        problems = exc.extra if isinstance(exc.extra, list) else [exc.extra] if exc.extra else []
        return HttpError(400, "invalid request", {"problems": problems})
    details = exc.extra if isinstance(exc.extra, dict) else ({"extra": exc.extra} if exc.extra else None)
    return HttpError(exc.status_code, str(exc.detail), details, dict(exc.headers or {}))


def handle_exception(_: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    """The single exception-to-HTTP mapping of the service."""
    if isinstance(exc, HTTPException):
        return error_response(_from_http_exception(exc))
    return error_response(to_stage1_error(exc))
