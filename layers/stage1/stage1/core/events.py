"""Typed events at a function's edge: a Lambda payload decoded once into a msgspec Struct."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from stage1.core.logging import get_logger, log_fields

log = get_logger("events")
E = TypeVar("E", bound=msgspec.Struct)


def decode_as(event: Any, kind: type[E]) -> E | None:
    """`event` (a Lambda payload, or an already typed event) as `kind`, or None (logged with the
    reason) if it does not have that shape."""
    if isinstance(event, kind):
        return event
    try:
        return msgspec.convert(event, kind)
    except msgspec.ValidationError as exc:
        keys = sorted(map(str, event))[:20] if isinstance(event, dict) else type(event).__name__
        log_fields(log, 30, f"not a {kind.__name__}: ignored", error=str(exc)[:200], keys=keys)
        return None


def to_wire(event: msgspec.Struct) -> dict[str, Any]:
    """An event as the JSON object a Lambda invocation carries."""
    return msgspec.to_builtins(event)
