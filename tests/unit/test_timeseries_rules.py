import pytest

from stage1.core.errors import BadRequest
from stage1.timeseries.kinds import Kind, create_table_sql, missing_columns, partition_for
from stage1.timeseries.timestamps import to_micros

JAN_2024 = 1_704_067_200  # 2024-01-01T00:00:00Z


@pytest.mark.parametrize(
    "value",
    [JAN_2024, JAN_2024 * 1_000, JAN_2024 * 1_000_000, JAN_2024 * 1_000_000_000, float(JAN_2024),
     str(JAN_2024), "2024-01-01T00:00:00Z", "2024-01-01T00:00:00+00:00", "2024-01-01 00:00:00",
     "2024-01-01T01:00:00+01:00"],
)
def test_every_unit_and_iso_form_lands_on_the_same_instant(value):
    assert to_micros(value) == JAN_2024 * 1_000_000


@pytest.mark.parametrize("value", ["yesterday", "", "2024-13-01", True, None, [1]])
def test_bad_timestamps_are_400(value):
    with pytest.raises(BadRequest):
        to_micros(value)


def test_missing_columns_lists_what_the_kind_needs():
    assert missing_columns(Kind.OHLCV, ["timestamp", "open", "close"]) == ["high", "low", "volume"]
    assert missing_columns(Kind.PREDICTIONS, ["target"]) == ["timestamp_unix|timestamp", "prediction"]
    assert missing_columns(Kind.INDICATORS, ["timestamp_unix", "rsi"]) == []


@pytest.mark.parametrize(("granularity", "partition"),
                         [("1s", "DAY"), ("30s", "DAY"), ("1m", "MONTH"), ("15m", "MONTH"), ("1h", "YEAR"),
                          ("4h", "YEAR"), ("1d", "YEAR"), ("", "MONTH"), (None, "MONTH"), ("weird", "MONTH")])
def test_partitioning_follows_granularity(granularity, partition):
    assert partition_for(granularity) == partition


def test_tables_are_wal_with_dedup_on_the_timestamp():
    sql = create_table_sql(Kind.PREDICTIONS, "btc_wf_20250101000000", "1h")
    assert sql.startswith('CREATE TABLE IF NOT EXISTS "btc_wf_20250101000000" (timestamp TIMESTAMP')
    assert sql.endswith("PARTITION BY YEAR WAL DEDUP UPSERT KEYS(timestamp, fold_number)")
    with pytest.raises(BadRequest):
        create_table_sql(Kind.OHLCV, "bad-name")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), 1e300, -1e300, 10**30,
                                   "99999999999999999999999", "nan", "inf"])
def test_non_finite_and_out_of_range_timestamps_are_400_not_1970_or_int64_min(value):
    # Before: NaN raised a bare ValueError (a 500), 1e300 and 10**30 became instants past int64.
    with pytest.raises(BadRequest, match="invalid timestamp"):
        to_micros(value)
