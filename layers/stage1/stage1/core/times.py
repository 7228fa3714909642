"""The one timestamp format of every `*_at` field in an answer (docs/resources.md, "Timestamps").

ISO-8601 in UTC with a `Z` and microseconds, exactly as msgspec writes an aware `datetime`:
fields typed `datetime` (datasets, runs, simulations) get it from msgspec, fields typed `str`
(jobs, tokens, uploads) from `iso()` below, so both spell a time the same way."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec


def utc(value: datetime | None) -> datetime | None:
    """A database timestamp as an aware UTC datetime (naive values are taken as UTC)."""
    if value is None:
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def iso(value: datetime | None) -> str | None:
    """`value` as the answers' timestamp text (msgspec's own encoding of the UTC datetime)."""
    if value is None:
        return None
    return msgspec.json.encode(utc(value)).decode()[1:-1]
