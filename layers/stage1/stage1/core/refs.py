"""Ids and references in paths, queries and bodies: the one UUID parser, and "a UUID or a slug".

The name rule itself (`NAME_PATTERN`: slugs and measurement names) is the wire's
(`stage1_wire.names`), so the client and the server check the same thing."""

from __future__ import annotations

import re
import uuid
from typing import Any

from stage1.core.errors import BadRequest
from stage1_wire.names import NAME_PATTERN

_NAME_RE = re.compile(NAME_PATTERN)


def as_uuid(value: Any) -> uuid.UUID | None:
    """`value` as a UUID, or None when it is not one (any type: a path segment, a JSON value)."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (ValueError, AttributeError, TypeError):
        return None


def parse_uuid(value: Any, field: str) -> uuid.UUID:
    """A path or query id that must be a UUID; anything else is a 400 naming the field."""
    found = as_uuid(value)
    if found is None:
        raise BadRequest(f"invalid {field}: not a UUID", {"field": field, "value": str(value)[:80]})
    return found


def parse_ref(value: Any, field: str = "dataset_id") -> tuple[str, uuid.UUID | str]:
    """A reference that may be a UUID or a slug: ("id", UUID) or ("slug", str), else 400."""
    found = as_uuid(value)
    if found is not None:
        return "id", found
    if isinstance(value, str) and _NAME_RE.fullmatch(value):
        return "slug", value
    raise BadRequest(f"invalid {field}: neither a UUID nor a slug ([a-z0-9_], at most 63 characters)",
                     {"field": field, "value": str(value)[:80]})
