"""Request bodies a handler reads itself (raw bytes), decoded strictly and bounded before they are read."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from stage1.core.errors import BadRequest, PayloadTooLarge

T = TypeVar("T", bound=msgspec.Struct)


def decode_strict(data: bytes, kind: type[T]) -> T:
    """A JSON body as `kind` with msgspec's strict JSON types ("1000", "1e3" or 100.0 are not an
    integer), where Litestar's own decoding of `data` converts numeric strings; empty means `{}`."""
    try:
        return msgspec.json.decode(data or b"{}", type=kind)
    except msgspec.ValidationError as exc:
        raise BadRequest("invalid request", {"problems": [str(exc)]}) from None
    except msgspec.DecodeError as exc:
        raise BadRequest("request body is not valid JSON", {"problems": [str(exc)]}) from None


def refuse_large(headers: Any, limit: int, message: str) -> None:
    """413 before reading a body whose `content-length` says it is over `limit` bytes."""
    length = headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(message, {"size": int(length), "max_bytes": limit})
