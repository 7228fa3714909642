"""The importer's row-hash sums (stage1.imports.rowhash) without QuestDB: the arithmetic against a
plain-Python model of Java's long (what fingerprint.py's SQL computes), and every refusal. The
bit-for-bit check against QuestDB itself is tests/integration/test_import_fingerprint.py."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest

from stage1.imports.rowhash import RowHasher
from stage1.timeseries.fingerprint import PRIME

OHLCV = [("open", "DOUBLE"), ("high", "DOUBLE"), ("low", "DOUBLE"), ("close", "DOUBLE"), ("volume", "DOUBLE")]
M = 1 << 64


def _java_long(x: float) -> int:
    return math.trunc(x)  # Java's (long) of a double in range: toward zero


def _model(ts: int, values: list[float]) -> int:
    h = ts % M
    for x in values:
        whole = _java_long(x)
        for part in (whole, _java_long((x - whole) * 2.0 ** 52)):
            h = ((h ^ (part % M)) * PRIME) % M
    return h


def _batch(ts: list[int], **cols: list) -> pa.Table:
    return pa.table({"timestamp": pa.array(ts, pa.timestamp("us")), **cols})


def _ohlcv(ts: list[int], value: float = 1.5) -> dict[str, list[float]]:
    return {c: [value + i + k / 3 for k in range(len(ts))] for i, (c, _) in enumerate(OHLCV)}


def test_sums_match_the_java_long_model_across_batches():
    values = [-1234.5678, 5e-324, -0.0, 2.0 ** 52 - 0.5, -(2.0 ** 51) - 0.25, 1e-12, 987654321.125]
    h = RowHasher(OHLCV)
    expected = 0
    for start in (0, len(values)):  # two batches
        ts = [1_700_000_000_000_000 + 60_000_000 * (start + k) for k in range(len(values))]
        cols = {c: [v * (i + 1) if abs(v * (i + 1)) < 2 ** 52 else v for v in values] for i, (c, _) in enumerate(OHLCV)}
        h.add(_batch(ts, **cols))
        for k, t in enumerate(ts):
            expected += _model(t, [cols[c][k] for c, _ in OHLCV])
    out = h.result()
    assert h.reason is None and out is not None
    assert out.sums == [expected % M] and out.rows == 2 * len(values)
    assert out.columns == OHLCV


@pytest.mark.parametrize("bad", [math.nan, math.inf, 2.0 ** 52, -(2.0 ** 52), None])
def test_a_value_outside_the_exact_range_is_refused(bad):
    h = RowHasher(OHLCV)
    cols = _ohlcv([1, 2, 3])
    cols["close"][1] = bad
    h.add(_batch([1, 2, 3], **cols))
    assert h.result() is None and h.reason is not None and "close" in h.reason


def test_timestamps_must_increase_across_batches():
    for second in ([3, 4], [2, 4]):  # equal to the last one, below it
        h = RowHasher(OHLCV)
        h.add(_batch([1, 2, 3], **_ohlcv([1, 2, 3])))
        h.add(_batch(second, **_ohlcv(second)))
        assert h.result() is None and "timestamps" in (h.reason or "")
    h = RowHasher(OHLCV)
    h.add(_batch([1, 3, 2], **_ohlcv([1, 3, 2])))
    assert h.result() is None


def test_types_and_columns_it_does_not_hash_are_refused():
    h = RowHasher(OHLCV)  # text
    h.add(_batch([1, 2], **_ohlcv([1, 2]), note=["a", "b"]))
    assert h.result() is None and "note" in (h.reason or "")
    h = RowHasher(OHLCV)  # a declared column absent
    cols = _ohlcv([1, 2])
    del cols["volume"]
    h.add(_batch([1, 2], **cols))
    assert h.result() is None
    h = RowHasher([])  # INT64_MIN is QuestDB's LONG null
    h.add(_batch([1, 2], n=pa.array([5, -(2 ** 63)], pa.int64())))
    assert h.result() is None and "INT64_MIN" in (h.reason or "")
    h = RowHasher([])  # an extra LONG column after the declared ones: accepted
    h.add(_batch([1, 2], n=pa.array([5, -7], pa.int64())))
    assert (out := h.result()) is not None and out.columns == [("n", "LONG")]
