"""Times from request bodies (a run's `started_at`, a simulation's trades): an ISO-8601 string
(naive = UTC) or a unix time in s/ms/µs/ns, recognised by magnitude like an imported row's."""

from __future__ import annotations

from datetime import UTC, datetime

from stage1.core.errors import BadRequest
from stage1.core.times import utc
from stage1.timeseries.timestamps import to_micros


def client_time(value: datetime | int | None, field: str) -> datetime | None:
    """A timestamp from a request body as an aware UTC datetime, or a 400 naming the field."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return utc(value)
    try:
        return datetime.fromtimestamp(to_micros(value) / 1_000_000, UTC)
    except (BadRequest, ValueError, OverflowError, OSError):  # out of datetime's range (years 1-9999)
        raise BadRequest(f"invalid {field}", {"field": field, "value": value}) from None
