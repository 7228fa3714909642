"""Timestamp rules for imported rows: unix integers in s, ms, µs or ns recognised by magnitude,
or ISO-8601 strings. Everything is normalised to microseconds (QuestDB's TIMESTAMP unit)."""

from __future__ import annotations

from datetime import UTC, datetime

from stage1.core.errors import BadRequest

# |value| below each bound is read in that unit. 1e11 s is the year 5138; 1e11 ms is 1973, so
# millisecond data from before March 1973 would be misread — acceptable for market data.
SECONDS_BELOW = 10**11
MILLIS_BELOW = 10**14
MICROS_BELOW = 10**17

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
    """One timestamp → microseconds since the epoch, or a 400 saying what was wrong."""
    if isinstance(value, bool):
        raise BadRequest("invalid timestamp", {"value": value})
    if isinstance(value, int | float):
        unit = unit_of(value)
        return int(value * 1_000_000) if unit == "s" else int(value * 1_000) if unit == "ms" else (
            int(value) if unit == "us" else int(value) // 1_000)
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
