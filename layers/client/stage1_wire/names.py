"""Constrained names and times that several resources' bodies share."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

# `(?!\n)`: Python's `$` also matches before a trailing newline, so without it "a\n" passed every
# schema and reached Postgres' check constraint (an unhandled 500). Valid in JSON Schema (ECMA) too.
NAME_PATTERN = r"^[a-z0-9_]{1,63}(?!\n)$"

Slug = Annotated[str, msgspec.Meta(pattern=NAME_PATTERN, max_length=63,
                                   description="1-63 characters from [a-z0-9_]")]
Measurement = Annotated[str, msgspec.Meta(pattern=NAME_PATTERN, max_length=63,
                                          description="QuestDB table name: 1-63 characters from [a-z0-9_]")]
# Unix seconds for bar and window bounds (0 .. year 9999).
UnixSeconds = Annotated[int, msgspec.Meta(ge=0, le=253_402_300_799)]
# A client-side time: an ISO-8601 string (naive = UTC) or a unix time in s/ms/us/ns.
ClientTime = datetime | int
