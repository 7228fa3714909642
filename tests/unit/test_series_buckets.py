"""The bucket-width rule of the chart-resolution reads (stage1.timeseries.downsample) and the SQL it
renders: at most N buckets for any span, and nothing but validated names and integers in the text."""

from __future__ import annotations

import random

import pytest

from stage1.core.errors import BadRequest
from stage1.timeseries import downsample, reads
from stage1.timeseries.downsample import HOUR, MICROS, bucket_count_bound, bucket_seconds, buckets


def test_width_gives_at_most_n_buckets_and_is_the_smallest_such():
    rng = random.Random(13)
    cases = [(0, 0), (0, 1), (0, MICROS), (0, 9 * 3600 * MICROS)]
    cases += [(0, rng.randrange(0, 10**17)) for _ in range(2000)]
    for first, last in cases:
        for n in (2, 3, 7, 1000, 2000, 10_000):
            w = bucket_seconds(first, last, n)
            assert w >= 1 and bucket_count_bound(first, last, w) <= n, (first, last, n, w)
            if w > 1:  # one second narrower could need more than N buckets
                assert (last - first) >= (w - 1) * MICROS * n


def test_ten_hourly_bars_in_two_points():
    assert bucket_seconds(0, 9 * 3600 * MICROS, 2) == 16201
    assert buckets(0, 9 * 3600 * MICROS, 2) == (0, 18000)  # from an hour up: whole hours from the hour


def test_hour_widths_start_on_the_hour_and_still_give_at_most_n():
    rng = random.Random(14)
    for _ in range(3000):
        first = rng.randrange(0, 10**16)
        last = first + rng.randrange(0, 10**15)
        n = rng.choice([2, 3, 7, 2000, 10_000])
        origin, width = buckets(first, last, n)
        assert origin <= first and bucket_count_bound(origin, last, width) <= n
        if width >= HOUR:
            assert width % HOUR == 0 and origin % (HOUR * MICROS) == 0
        else:
            assert origin == first and width == bucket_seconds(first, last, n)


def _query() -> reads.RowQuery:
    return reads.RowQuery(table="t_ohlcv", ts_column="timestamp", ts_type="TIMESTAMP",
                          columns=["open", "high", "Weird_Name", "gone"], from_s=100, to_s=200, missing={"gone"})


def test_sql_is_sample_by_whole_seconds_from_the_first_observation():
    functions = downsample.aggregates([reads.TableColumn("open", "DOUBLE", False),
                                       reads.TableColumn("high", "STRING", False),
                                       reads.TableColumn("Weird_Name", "LONG", False)], ohlcv=True)
    assert functions == {"open": "first", "high": "last", "Weird_Name": "last"}  # max() only on numbers
    q = downsample.SampledQuery(_query(), functions, 37, 100 * MICROS + 5, 200 * MICROS, 50)
    sql = q.select_sql(20, 40)
    assert ("sample by 37s from '1970-01-01T00:01:40.000005Z' to '1970-01-01T00:03:20.000001Z' limit 51"
            in sql)
    assert 'first("open") as "open"' in sql and 'last("Weird_Name") as "Weird_Name"' in sql
    assert 'null as "gone"' in sql and sql.endswith("limit 40, 60")
    assert downsample.widen(q).width_s == 74


def test_a_column_name_outside_the_pattern_never_reaches_sql():
    query = _query()
    query.columns = ['x" from secrets --']
    with pytest.raises(BadRequest):
        downsample.SampledQuery(query, {}, 1, 0, 10, 2).select_sql()
