"""Rows as QuestDB will store them: the designated `timestamp` (microseconds) from `timestamp_unix`
or `timestamp`, column names checked, required columns present.

The unit rules are those of `stage1.timeseries.timestamps` (same thresholds, imported), applied
to whole Arrow arrays with pyarrow.compute instead of value by value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from stage1.imports.errors import ImportFailed
from stage1.timeseries.kinds import SPECS, TIMESTAMP, TIMESTAMP_ALIASES, Kind, missing_columns
from stage1.timeseries.timestamps import MICROS_BELOW, MILLIS_BELOW, SECONDS_BELOW, TS_MAX, TS_MIN, to_micros

_COLUMN_RE = re.compile(r"^[a-z0-9_]{1,63}$")
TS_US = pa.timestamp("us")


@dataclass(frozen=True)
class Plan:
    """How each batch of a file becomes rows of the table: decided once from the file's schema."""

    kind: Kind
    source_ts: str  # the file's column that holds the timestamp (original spelling)
    columns: list[tuple[str, str]]  # (file column, table column) of the value columns
    symbols: frozenset[str]  # table columns sent as SYMBOL
    ordinal: str | None  # table column filled with the row's ordinal in the file if absent

    @property
    def table_columns(self) -> list[str]:
        return [TIMESTAMP, *(dst for _, dst in self.columns), *([self.ordinal] if self.ordinal else [])]


def plan(kind: Kind, schema: pa.Schema) -> Plan:
    """Check a file's columns against its kind; raise `ImportFailed` listing what is wrong."""
    names = [n.strip().lower() for n in schema.names]
    missing = missing_columns(kind, names)
    if missing:
        raise ImportFailed(f"missing required columns: {', '.join(missing)}",
                           {"missing_columns": missing, "columns": names[:200]})
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ImportFailed(f"duplicate columns: {', '.join(dupes)}", {"duplicate_columns": dupes})
    ts_name = next(alias for alias in TIMESTAMP_ALIASES if alias in names)
    source_ts = schema.names[names.index(ts_name)]
    skip = set(TIMESTAMP_ALIASES)  # the other alias (if both are present) is not stored either
    invalid = [n for n in names if n not in skip and not _COLUMN_RE.fullmatch(n)]
    if invalid:
        raise ImportFailed("invalid column names: use 1-63 characters from [a-z0-9_]",
                           {"invalid_columns": invalid[:50]})
    # A CSV column with bytes that are not UTF-8 reads as binary; QuestDB stores no binary over ILP.
    binary = [n for n, fld in zip(names, schema, strict=True) if pa.types.is_binary(fld.type)
              or pa.types.is_large_binary(fld.type) or pa.types.is_fixed_size_binary(fld.type)]
    if binary:
        raise ImportFailed(f"columns hold bytes that are not UTF-8 text: {', '.join(binary[:20])}",
                           {"binary_columns": binary[:50]})
    columns = [(orig, n) for orig, n in zip(schema.names, names, strict=True) if n not in skip]
    spec = SPECS[kind]
    symbols = frozenset(c for c, t in spec.columns if t == "SYMBOL")
    present = {n for _, n in columns}
    ordinal = next((k for k in spec.dedup_keys if k in ("row_id", "trade_index") and k not in present), None)
    return Plan(kind, source_ts, columns, symbols, ordinal)


def timestamps_to_micros(arr: pa.Array | pa.ChunkedArray, first_row: int = 0) -> pa.Array:
    """Unix s/ms/µs/ns (by magnitude, per value) or ISO-8601 → int64 microseconds, every value
    between 1970 and 9999 (what QuestDB stores as a designated timestamp). NaN, ±inf, 1e300 or an
    integer that overflows fails naming the row (`first_row` + position + 1, counted from the first
    data row of the file); nothing wraps to 1970 or INT64_MIN."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return _in_range(convert_timestamps(arr, first_row), arr, first_row)


def convert_timestamps(arr: pa.Array | pa.ChunkedArray, first_row: int = 0) -> pa.Array:
    """The conversion alone (the rules of `to_micros`, before 1970 included); non-finite floats
    and values beyond int64 microseconds fail naming the row."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if arr.null_count:
        first = pc.index(pc.is_null(arr), True).as_py()
        raise ImportFailed(f"timestamp is empty in {arr.null_count} row(s) (first at row {first_row + first + 1})",
                           {"empty_timestamps": arr.null_count, "row": first_row + first + 1})
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        # Zone-aware values are stored as UTC instants already; naive ones are taken as UTC.
        if pa.types.is_date(t):
            arr = arr.cast(pa.timestamp("s"))
        target = pa.timestamp("us", arr.type.tz)
        try:  # sub-µs digits are cut; an instant beyond int64 µs is an error, not a wrapped value
            micros = pc.cast(arr, options=pc.CastOptions(target, allow_time_truncate=True)).cast(pa.int64())
        except pa.ArrowInvalid as exc:
            raise ImportFailed(f"timestamp out of range: {exc}", {"reason": str(exc)[:300]}) from None
        return micros
    if pa.types.is_integer(t):
        v = arr.cast(pa.int64())
        return _by_magnitude(v, pc.abs(v))
    if pa.types.is_floating(t):
        v = arr.cast(pa.float64())
        finite = pc.is_finite(v)
        if not pc.all(finite).as_py():
            i = pc.index(finite, False).as_py()
            raise _bad_value(arr, i, first_row, "not a finite number")
        scaled = _by_magnitude(v, pc.abs(v))
        outside = pc.greater(pc.abs(scaled), pa.scalar(float(_ANY_LIMIT)))  # beyond the years 1..9999
        if pc.any(outside).as_py():
            raise _bad_value(arr, pc.index(outside, True).as_py(), first_row, _RANGE)
        return pc.trunc(scaled).cast(pa.int64(), safe=False)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return _strings(arr.cast(pa.string()), first_row)
    raise ImportFailed(f"timestamp column has unsupported type {t}", {"type": str(t)})


_RANGE = "outside 1970-01-01 .. 9999-12-31"
_ANY_LIMIT = TS_MAX


def _bad_value(arr: pa.Array, i: int, first_row: int, why: str) -> ImportFailed:
    value = str(arr[i].as_py())[:40]
    return ImportFailed(f"invalid timestamp {value!r} at row {first_row + i + 1}: {why}",
                        {"row": first_row + i + 1, "value": value, "reason": why})


def _in_range(micros: pa.Array, source: pa.Array, first_row: int) -> pa.Array:
    outside = pc.or_(pc.less(micros, pa.scalar(TS_MIN, pa.int64())), pc.greater(micros, pa.scalar(TS_MAX, pa.int64())))
    if pc.any(outside).as_py():
        raise _bad_value(source, pc.index(outside, True).as_py(), first_row, _RANGE)
    return micros


def _by_magnitude(v: pa.Array, mag: pa.Array) -> pa.Array:
    is_float = pa.types.is_floating(v.type)
    one = (lambda x: pa.scalar(float(x))) if is_float else (lambda x: pa.scalar(int(x), pa.int64()))
    micros_of_ns = pc.divide(v, one(1000)) if is_float else _floor_div(v, 1000)
    return pc.if_else(
        pc.less(mag, one(SECONDS_BELOW)), pc.multiply(v, one(1_000_000)),
        pc.if_else(pc.less(mag, one(MILLIS_BELOW)), pc.multiply(v, one(1000)),
                   pc.if_else(pc.less(mag, one(MICROS_BELOW)), v, micros_of_ns)))


def _floor_div(v: pa.Array, d: int) -> pa.Array:
    # Python's // (what to_micros does): floor, also for negative values.
    q = pc.divide(v, pa.scalar(d, pa.int64()))  # truncates toward zero
    adjust = pc.and_(pc.less(v, pa.scalar(0, pa.int64())),
                     pc.not_equal(pc.multiply(q, pa.scalar(d, pa.int64())), v))
    return pc.subtract(q, pc.cast(adjust, pa.int64()))


def _strings(arr: pa.Array, first_row: int) -> pa.Array:
    trimmed = pc.utf8_trim_whitespace(arr)
    if pc.all(pc.match_substring_regex(trimmed, r"^-?[0-9]{1,18}$")).as_py():  # fits int64 unscaled
        v = trimmed.cast(pa.int64())
        return _by_magnitude(v, pc.abs(v))
    for target in (pa.timestamp("us", "UTC"), TS_US):
        try:
            return pc.cast(trimmed, target).cast(pa.int64())
        except pa.ArrowInvalid:
            continue
    # Mixed spellings (some with a zone, some without), or digits too long for int64: value by value,
    # with the reason of the first bad one.
    out = []
    for i, value in enumerate(trimmed.to_pylist()):
        try:
            out.append(to_micros(value))
        except Exception as exc:
            reason = getattr(exc, "message", str(exc))
            raise ImportFailed(f"invalid timestamp {value[:40]!r} at row {first_row + i + 1}: {reason}",
                               {"row": first_row + i + 1, "value": value[:64], "reason": reason}) from None
    return pa.array(out, pa.int64())


def table_batch(p: Plan, batch: pa.RecordBatch, first_ordinal: int) -> pa.Table:
    """One file batch → the columns sent to QuestDB (designated `timestamp` first)."""
    micros = timestamps_to_micros(batch.column(p.source_ts), first_ordinal)
    arrays = [micros.cast(TS_US)]
    names = [TIMESTAMP]
    for src, dst in p.columns:
        arrays.append(batch.column(src))
        names.append(dst)
    if p.ordinal:
        arrays.append(pa.array(range(first_ordinal, first_ordinal + batch.num_rows), pa.int64()))
        names.append(p.ordinal)
    return pa.Table.from_arrays(arrays, names=names)
