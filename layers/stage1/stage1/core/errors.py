"""The error envelope of CONTRACT.md and the one place that maps exceptions to HTTP.

Services raise the `Stage1Error` subclasses below; backing-service failures that escape a
client module (psycopg, botocore, the QuestDB client) are recognised by their type and become a
503 naming the service. Nothing else in the code base builds an error response.
"""

from __future__ import annotations

from typing import Any

import msgspec

from stage1.core.logging import get_logger, request_id_var

log = get_logger("errors")


class ErrorBody(msgspec.Struct):
    """`{"error": "<message>", "details": <object|null>}` — every non-2xx response body."""

    error: str
    details: dict[str, Any] | None = None


class Stage1Error(Exception):
    status_code = 500

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def body(self) -> ErrorBody:
        return ErrorBody(self.message, self.details)

    def headers(self) -> dict[str, str]:
        return {}


class HttpError(Stage1Error):
    """An error whose status is only known at run time (e.g. one raised by the framework)."""

    def __init__(
        self, status_code: int, message: str, details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, details)
        self.status_code = status_code
        self._headers = headers or {}

    def headers(self) -> dict[str, str]:
        return self._headers


class BadRequest(Stage1Error):
    status_code = 400


class Unauthorized(Stage1Error):
    status_code = 401


class Forbidden(Stage1Error):
    status_code = 403


class NotFound(Stage1Error):
    status_code = 404


class Conflict(Stage1Error):
    status_code = 409


class PayloadTooLarge(Stage1Error):
    status_code = 413


class TooManyRequests(Stage1Error):
    status_code = 429

    def __init__(self, message: str, retry_after: int, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class ServiceUnavailable(Stage1Error):
    """A backing service (postgres, questdb, object store) is down or refused the request."""

    status_code = 503

    def __init__(self, service: str, reason: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{service} unavailable: {reason}", {"service": service, **(details or {})})
        self.service = service


def _mro_names(exc: BaseException) -> set[str]:
    return {f"{cls.__module__.split('.')[0]}.{cls.__name__}" for cls in type(exc).__mro__}


# Recognised by module and class name so that this module imports none of those (heavy) libraries:
# a function that never talks to S3 should not pay for importing botocore on a cold start.
_SERVICE_ERRORS = {
    "psycopg.OperationalError": "postgres",
    "psycopg.InterfaceError": "postgres",
    "psycopg_pool.PoolTimeout": "postgres",
    "botocore.EndpointConnectionError": "object store",
    "botocore.ConnectionError": "object store",
    "botocore.HTTPClientError": "object store",
    "httpx.TransportError": "questdb",
}
# The questdb client raises one QuestDBError type; only these codes mean the server is unreachable.
# (ProtocolVersionError: the client could not reach the server to negotiate the protocol.)
_QUESTDB_DOWN_CODES = {
    "CouldNotResolveAddr", "SocketError", "ConnectTimeout", "ServerFlushError", "HandshakeError",
    "ProtocolVersionError",
}


def service_of(exc: BaseException) -> str | None:
    """The backing service an exception says is unavailable, or None."""
    names = _mro_names(exc)
    for name, service in _SERVICE_ERRORS.items():
        if name in names:
            return service
    if "questdb.QuestDBError" in names:
        code = getattr(getattr(exc, "code", None), "name", "")
        return "questdb" if code in _QUESTDB_DOWN_CODES else None
    if "botocore.ClientError" in names:
        status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if status >= 500 or status in (0, 403):
            return "object store"
    return None


def to_stage1_error(exc: BaseException) -> Stage1Error:
    """Classify any exception into a `Stage1Error` (the HTTP mapping lives in `stage1.core.app`)."""
    if isinstance(exc, Stage1Error):
        return exc
    service = service_of(exc)
    if service is not None:
        return ServiceUnavailable(service, _first_line(exc))
    if "psycopg.DataError" in _mro_names(exc):
        # A value Postgres cannot hold (a NUL character in text or JSON, a number out of range): with
        # bind parameters only, that is the client's input, so 400 with Postgres' reason.
        return BadRequest("invalid value", {"postgres": _first_line(exc)})
    log.error("unhandled error", exc_info=exc)
    return Stage1Error("internal error", {"request_id": request_id_var.get()})


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
