"""Timestamp rules for imported rows: unix integers in s, ms, µs or ns recognised by magnitude,
or ISO-8601 strings. Everything is normalised to microseconds (QuestDB's TIMESTAMP unit)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from stage1.core.errors import BadRequest

# |value| below each bound is read in that unit. 1e11 s is the year 5138; 1e11 ms is 1973, so
# millisecond data from before March 1973 would be misread — acceptable for market data.
SECONDS_BELOW = 10**11
MILLIS_BELOW = 10**14
MICROS_BELOW = 10**17

# The instants a designated timestamp may hold: QuestDB refuses rows before 1970 ("rejected") and
# answers HTTP 500 for years after 9999, so both are refused here, with the row, before sending.
TS_MIN = 0
TS_MAX = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z in µs
# Any instant to_micros accepts (filters may reach before 1970): years 1..9999.
_ANY_MIN = -62_135_596_800_000_000

# The factor that turns a value of each unit into microseconds (ns divides by 1000).
UNIT_TO_MICROS = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 0.001}


def unit_of(value: int | float) -> str:
    magnitude = abs(value)
    if magnitude < SECONDS_BELOW:
        return "s"
    if magnitude < MILLIS_BELOW:
        return "ms"
    if magnitude < MICROS_BELOW:
        return "us"
    return "ns"


def to_micros(value: int | float | str) -> int:
    """One timestamp → microseconds since the epoch, or a 400 saying what was wrong. NaN, ±inf
    and values beyond the year 9999 (1e300, an int64 that overflows once scaled) are refused, never
    wrapped to 1970 or INT64_MIN."""
    if isinstance(value, bool):
        raise BadRequest("invalid timestamp", {"value": value})
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise BadRequest("invalid timestamp: not a finite number", {"value": str(value)})
        unit = unit_of(value)
        micros = int(value * 1_000_000) if unit == "s" else int(value * 1_000) if unit == "ms" else (
            int(value) if unit == "us" else int(value) // 1_000)
        if not _ANY_MIN <= micros <= TS_MAX:
            raise BadRequest("invalid timestamp: out of range (years 1 to 9999)", {"value": str(value)[:64]})
        return micros
    if isinstance(value, str):
        text = value.strip()
        try:
            return to_micros(int(text)) if text.lstrip("-").isdigit() else _iso_micros(text)
        except ValueError:
            raise BadRequest("invalid timestamp", {"value": value[:64]}) from None
    raise BadRequest("invalid timestamp", {"value": str(value)[:64]})


def _iso_micros(text: str) -> int:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # naive ISO strings are UTC
    delta = parsed - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def micros_to_unix(micros: int | None) -> int | None:
    """Microseconds → whole unix seconds (the contract's `*_first_ts` fields)."""
    return None if micros is None else micros // 1_000_000
