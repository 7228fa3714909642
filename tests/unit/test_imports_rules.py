"""The import core's rules without services: vectorised timestamps agree with the scalar rules,
formats are recognised, columns are checked, part sizes respect S3's limits."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.csv as pcsv
import pytest

from stage1.imports.errors import ImportFailed
from stage1.imports.formats import Source, open_batches, sniff
from stage1.imports.normalize import convert_timestamps, plan, table_batch, timestamps_to_micros
from stage1.timeseries.kinds import Kind
from stage1.timeseries.timestamps import MICROS_BELOW, MILLIS_BELOW, SECONDS_BELOW, to_micros
from stage1.uploads.formats import format_from_name
from stage1.uploads.service import MIN_PART, part_size_for
from stage1.uploads.service import S3_MAX_PARTS as MAX_PARTS

EDGES = [0, 1, -1, 1_700_000_000, SECONDS_BELOW - 1, SECONDS_BELOW, MILLIS_BELOW - 1, MILLIS_BELOW,
         MICROS_BELOW - 1, MICROS_BELOW, 1_700_000_000_123_456_789, -1_700_000_000_123_456_789, -(SECONDS_BELOW + 7)]


def test_integer_timestamps_follow_the_scalar_rules_at_every_threshold():
    assert convert_timestamps(pa.array(EDGES, pa.int64())).to_pylist() == [to_micros(v) for v in EDGES]


def test_float_and_string_timestamps():
    floats = [1_700_000_000.5, 1_700_000_000_123.5, -1.25]
    assert convert_timestamps(pa.array(floats)).to_pylist() == [to_micros(v) for v in floats]
    texts = ["2023-11-14T22:13:20Z", "2023-11-14T23:13:20+01:00", "2023-11-14 22:13:20.5"]
    assert timestamps_to_micros(pa.array(texts)).to_pylist() == [to_micros(v) for v in texts]
    assert timestamps_to_micros(pa.array(["1700000000", " 1700000000000 "])).to_pylist() == [
        1_700_000_000_000_000] * 2


def test_csv_inferred_iso_timestamps_and_bad_values():
    table = pcsv.read_csv(io.BytesIO(b"timestamp\n2023-11-14T22:13:20Z\n2023-11-14T22:13:21.25Z\n"))
    assert timestamps_to_micros(table.column("timestamp")).to_pylist() == [1_700_000_000_000_000,
                                                                            1_700_000_001_250_000]
    with pytest.raises(ImportFailed, match="invalid timestamp 'yesterday'"):
        timestamps_to_micros(pa.array(["2023-11-14T22:13:20Z", "yesterday"]))
    with pytest.raises(ImportFailed, match="empty"):
        timestamps_to_micros(pa.array([1, None]))


def test_plan_lists_missing_and_invalid_columns():
    with pytest.raises(ImportFailed) as missing:
        plan(Kind.OHLCV, pa.schema([("Timestamp_Unix", pa.int64()), ("open", pa.float64())]))
    assert missing.value.details["missing_columns"] == ["high", "low", "close", "volume"]
    with pytest.raises(ImportFailed) as invalid:
        plan(Kind.RAW, pa.schema([("timestamp", pa.int64()), ("rsi-14", pa.float64())]))
    assert invalid.value.details["invalid_columns"] == ["rsi-14"]


def test_raw_rows_get_their_ordinal_and_the_other_alias_is_dropped():
    schema = pa.schema([("timestamp_unix", pa.int64()), ("timestamp", pa.string()), ("Value", pa.float64())])
    p = plan(Kind.RAW, schema)
    batch = pa.record_batch([pa.array([1, 2]), pa.array(["a", "b"]), pa.array([0.5, 1.5])], schema=schema)
    out = table_batch(p, batch, first_ordinal=10)
    assert out.column_names == ["timestamp", "value", "row_id"]
    assert out.column("row_id").to_pylist() == [10, 11]


def test_formats_by_name_and_by_content():
    assert format_from_name("A.CSV") == "csv" and format_from_name("x.csv.gz") == "csv.gz"
    assert format_from_name("x.parquet") == "parquet" and format_from_name("x.arrow") == "arrow"
    assert format_from_name("blob", "application/vnd.apache.parquet") == "parquet"
    assert format_from_name("x.exe") is None
    assert sniff(b"PAR1....") == "parquet" and sniff(b"ARROW1\0\0") == "arrow"
    assert sniff(b"\x1f\x8b\x08") == "csv.gz" and sniff(b"timestamp,") == "csv"


def test_csv_batches_are_bounded_by_the_block_size():
    data = b"timestamp,value\n" + b"".join(b"%d,%d.5\n" % (1_700_000_000 + i, i) for i in range(50_000))
    batches = open_batches(Source.from_bytes(data), block_size=64 * 1024)
    sizes = [b.num_rows for b in batches.batches]
    assert sum(sizes) == 50_000 and len(sizes) > 5 and max(sizes) < 10_000
    assert batches.schema.field("value").type == pa.float64()


def test_part_sizes_respect_s3_limits():
    assert part_size_for(100 * 1024**2) == MIN_PART
    for size in (10 * 1024**3, 50 * 1024**3, 5 * 1024**4):
        part = part_size_for(size)
        assert part >= MIN_PART and part % 1024**2 == 0 and -(-size // part) <= MAX_PARTS


@pytest.mark.parametrize(("values", "row", "why"), [
    ([1_700_000_000.0, float("nan")], 2, "not a finite number"),
    ([1_700_000_000.0, 1.0, float("inf")], 3, "not a finite number"),
    ([1e300], 1, "outside"),
    ([1_700_000_000, -5], 2, "outside"),  # QuestDB refuses designated timestamps before 1970
    (["1700000000", "99999999999999999999999"], 2, "out of range"),  # overflows int64
    (["2023-11-14T22:13:20Z", "10000-01-01T00:00:00Z"], 2, "invalid timestamp"),
])
def test_bad_timestamps_fail_with_the_file_row_never_wrap(values, row, why):
    with pytest.raises(ImportFailed, match=why) as failed:
        timestamps_to_micros(pa.array(values), first_row=100)
    assert failed.value.details["row"] == 100 + row
    assert f"row {100 + row}" in failed.value.message


def test_timestamps_in_range_are_kept_and_mixed_units_land_on_one_instant():
    mixed = [1_700_000_000, 1_700_000_000_000, 1_700_000_000_000_000, 1_700_000_000_000_000_000]
    assert timestamps_to_micros(pa.array(mixed)).to_pylist() == [1_700_000_000_000_000] * 4
    assert timestamps_to_micros(pa.array([0.0, 99_999_999_999.0])).to_pylist() == [0, 99_999_999_999_000_000]


# ---------------------------------------------------------------- byte limits (hole 5), small and fast
def _read_all(data: bytes, limits, kind: Kind = Kind.RAW) -> int:
    from stage1.imports.core import column_hints

    batches = open_batches(Source.from_bytes(data), hints=column_hints(kind), limits=limits)
    p = plan(kind, batches.schema)
    rows = 0
    for batch in batches.batches:
        table_batch(p, batch, rows)
        rows += batch.num_rows
    return rows


def _parquet_bytes(table: pa.Table, **options) -> bytes:
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(table, sink, **options)
    return sink.getvalue()


def test_a_parquet_row_group_over_the_cap_fails_from_the_metadata_before_any_row_is_read():
    from stage1.imports.limits import Limits

    n = 20_000
    data = bytearray(_parquet_bytes(pa.table({"timestamp_unix": pa.array(range(1_700_000_000, 1_700_000_000 + n)),
                                              "v": pa.array([float(i) for i in range(n)])}),
                                    compression="none"))
    data[200:4_000] = b"\xee" * 3_800  # the data pages are garbage now: reading a row would fail differently
    with pytest.raises(ImportFailed, match="import_max_row_group_bytes") as failed:
        _read_all(bytes(data), Limits(row_group_bytes=100_000))
    assert failed.value.details["max"] == 100_000


def test_a_dictionary_encoded_parquet_string_is_measured_decoded_not_as_stored():
    from stage1.imports.limits import Limits

    n = 20_000
    note = pa.DictionaryArray.from_arrays(pa.array([0] * n, pa.int32()), pa.array(["x" * 1_000]))
    data = _parquet_bytes(pa.table({"timestamp_unix": pa.array(range(1_700_000_000, 1_700_000_000 + n)),
                                    "note": note}), store_schema=False)
    assert len(data) < 200_000  # 20 MB of text once decoded
    with pytest.raises(ImportFailed, match="import_max_expansion_ratio"):
        _read_all(data, Limits(batch_bytes=1 << 20, expansion_ratio=10))
    # Under a generous budget the same file reads whole, in slices of at most batch_bytes.
    assert _read_all(data, Limits(batch_bytes=4 << 20, expansion_ratio=1_000)) == n


def test_an_arrow_batch_is_checked_from_its_header_even_compressed():
    import pyarrow.ipc as ipc

    from stage1.imports.limits import Limits

    table = pa.table({"timestamp_unix": pa.array([1_700_000_000] * 200_000), "v": pa.array([0.0] * 200_000)})
    for options in ({}, {"compression": "zstd"}):
        sink = io.BytesIO()
        with ipc.new_stream(sink, table.schema, options=ipc.IpcWriteOptions(**options)) as w:
            w.write_table(table)
        with pytest.raises(ImportFailed, match="import_max_batch_bytes"):
            _read_all(sink.getvalue(), Limits(batch_bytes=1 << 20))
        assert _read_all(sink.getvalue(), Limits(batch_bytes=8 << 20)) == 200_000


def test_csv_line_column_gzip_and_string_caps():
    import gzip

    from stage1.imports.limits import Limits

    with pytest.raises(ImportFailed, match="import_block_bytes"):
        _read_all(b"timestamp,v\n1700000000," + b"9" * (1 << 20), Limits(block_bytes=64 << 10))
    wide = (",".join(["timestamp"] + [f"c{i}" for i in range(1_200)]) + "\n").encode()
    with pytest.raises(ImportFailed, match="import_max_columns"):
        _read_all(wide + b"1," * 1_200 + b"1\n", Limits())
    bomb = gzip.compress(b"timestamp,v\n" + b"1700000000,1\n" * 400_000)
    with pytest.raises(ImportFailed, match="import_max_expansion_ratio"):
        _read_all(bomb, Limits(batch_bytes=1 << 20, expansion_ratio=20))
    long_string = pa.table({"timestamp": pa.array([1_700_000_000]), "s": pa.array(["y" * 5_000])})
    with pytest.raises(ImportFailed, match="import_max_string_bytes"):
        _read_all(_parquet_bytes(long_string), Limits(string_bytes=4_096))


def test_a_failed_read_is_an_outage_only_if_the_store_does_not_answer():
    from stage1.core.errors import ServiceUnavailable
    from stage1.imports.formats import read_error

    def down() -> None:
        raise OSError("connection refused")

    assert isinstance(read_error(Source.from_bytes(b""), OSError("truncated"), "CSV"), ImportFailed)
    gone = Source(lambda: pa.BufferReader(b""), 0, check=down)
    assert isinstance(read_error(gone, OSError("reset by peer"), "CSV"), ServiceUnavailable)
    # A value that overflows int64 is the file's fault, whatever exception type pyarrow used.
    with pytest.raises(ImportFailed, match="row 1"):
        _read_all(b"timestamp,v\n99999999999999999999999,1\n", None)
