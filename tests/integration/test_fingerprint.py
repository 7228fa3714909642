"""The content fingerprint (stage1.timeseries.fingerprint) against the real QuestDB: what it detects."""

from __future__ import annotations

import uuid

import pytest

from stage1.core.questdb import get_questdb
from stage1.timeseries.fingerprint import fingerprint
from stage1.timeseries.kinds import Kind, drop_table, ensure_table
from stage1.timeseries.wal import wait_applied

T0 = 1_700_000_000


@pytest.fixture
def table():
    name = f"zz_fp_{uuid.uuid4().hex[:12]}"
    ensure_table(Kind.OHLCV, name, "1m")
    yield name
    drop_table(name)


def _write(table: str, rows: list[tuple[int, float, float, float, float, float]]) -> None:
    def sql(x: float | None) -> str:
        return "null" if x is None else repr(x)

    values = ", ".join(f"(cast({ts * 1_000_000} as timestamp), {sql(o)}, {sql(h)}, {sql(low)}, {sql(c)}, {sql(v)})"
                       for ts, o, h, low, c, v in rows)
    get_questdb().exec(f'insert into "{table}" (timestamp, open, high, low, close, volume) values {values}')  # noqa: S608
    wait_applied(table, timeout=30)


def _bars(n: int) -> list[tuple[int, float, float, float, float, float]]:
    return [(T0 + 60 * k, 100 + k / 7, 101 + k / 7, 99 + k / 7, 100.5 + k / 7, 1000.0 * k) for k in range(n)]


def test_fingerprint_changes_with_one_value_and_not_with_a_reimport(table):
    bars = _bars(200)
    _write(table, bars)
    base = fingerprint(table)
    assert base.rows == 200 and base.first_ts == T0 * 1_000_000 and len(base.digest or "") == 64
    _write(table, bars)  # the same rows again: DEDUP keeps one copy, nothing changes
    assert fingerprint(table) == base
    ts, o, h, low, c, v = bars[77]
    for changed in ((ts, o, h, low, c + 1e-9, v), (ts, o, h, low, c, v + 1), (ts, o, h, low, c, None)):
        _write(table, [changed])  # type: ignore[list-item]
        assert fingerprint(table).digest != base.digest, changed
    _write(table, [bars[77]])  # back to the original value: the original fingerprint
    assert fingerprint(table) == base


def test_fingerprint_sees_values_moved_between_rows_and_columns(table):
    bars = _bars(20)
    _write(table, bars)
    base = fingerprint(table).digest
    a, b = bars[3], bars[4]
    _write(table, [(a[0], *b[1:]), (b[0], *a[1:])])  # two rows' values swapped
    assert fingerprint(table).digest != base
    _write(table, [a, b])
    assert fingerprint(table).digest == base
    ts, o, h, low, c, v = bars[5]
    _write(table, [(ts, c, h, low, o, v)])  # open and close swapped within a row
    assert fingerprint(table).digest != base


def test_fingerprint_of_a_missing_table_and_of_text_columns(table):
    assert fingerprint(f"zz_fp_missing_{uuid.uuid4().hex[:8]}").digest is None
    _write(table, _bars(3))
    get_questdb().exec(f'alter table "{table}" add column note varchar')
    base = fingerprint(table).digest
    get_questdb().exec(f"insert into \"{table}\" (timestamp, open, high, low, close, volume, note) values "  # noqa: S608
                       f"(cast({T0 * 1_000_000} as timestamp), 100.0, 101.0, 99.0, 100.5, 0.0, 'x')")
    wait_applied(table, timeout=30)
    assert fingerprint(table).digest != base
