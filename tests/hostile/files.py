"""Hostile files for the importer, generated (bombs are built by the test, never committed).

Each `FileCase` says how the file is made, what it is uploaded as, and what must happen: a FAILED
job (or a 400 from the blocking import) whose message matches `expect`, or — for the few files
that are odd but valid — a COMPLETED job with exactly `rows` rows. `via`: "upload" (presigned POST
→ MinIO → event → importer), "blocking" (POST /api/questdb/import, small files) or "both".
Sizes are chosen to cross the default limits (core/settings.py, "Import limits") while staying
cheap to build: a few MB and a second or two each.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

T0 = 1_700_000_000
OHLCV_HEADER = b"timestamp_unix,open,high,low,close,volume\n"


@dataclass(frozen=True)
class FileCase:
    name: str
    build: Callable[[], bytes]
    filename: str
    kind: str = "raw"
    expect: str | None = None  # regex the error must match; None: the import must complete
    via: str = "upload"
    rows: int | None = None  # rows a completing case must import


def ohlcv_rows(n: int, start: int = T0) -> bytes:
    return b"".join(b"%d,1.0,2.0,0.5,1.5,10.0\n" % (start + 60 * k) for k in range(n))


def _parquet(table: pa.Table, **options) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, **options)
    return sink.getvalue()


def _ipc_stream(table: pa.Table, **options) -> bytes:
    sink = io.BytesIO()
    with ipc.new_stream(sink, table.schema, options=ipc.IpcWriteOptions(**options)) as writer:
        writer.write_table(table)
    return sink.getvalue()


# ---------------------------------------------------------------- bombs
def gzip_bomb() -> bytes:
    """128 MiB of identical valid rows compress ~1000-fold: far over the expansion ratio (100)."""
    out = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: a gzip container
    chunk = b"1700000000,1.0,1.0,1.0,1.0,1.0\n" * (1 << 15)
    parts = [out.compress(OHLCV_HEADER)]
    for _ in range((128 << 20) // len(chunk)):
        parts.append(out.compress(chunk))
    parts.append(out.flush())
    return b"".join(parts)


def gzip_nul_bomb() -> bytes:
    """64 MiB of NUL bytes: no line ends, the first block straddles."""
    return gzip.compress(b"\0" * (64 << 20), compresslevel=9)


def parquet_dictionary_bomb() -> bytes:
    """The review's bomb: ~600 KB, metadata says ~1 MB, decodes to 1 GB (one 10 KB string,
    dictionary-encoded, 100k times). Before: one 954 MiB batch, +2.2 GiB RSS."""
    n = 100_000
    note = pa.DictionaryArray.from_arrays(pa.array([0] * n, pa.int32()), pa.array(["x" * 10_000]))
    # store_schema=False: a reader sees a plain string column (as in the review's file), not the
    # Arrow dictionary type a pyarrow writer would otherwise record.
    return _parquet(pa.table({"timestamp_unix": pa.array(range(T0, T0 + n), pa.int64()), "note": note}),
                    row_group_size=n, store_schema=False)


def parquet_row_group_bomb() -> bytes:
    """~1 MB file, one row group of 1.14 GB uncompressed (950 columns of zeros): refused from the
    metadata before a row is read."""
    n = 150_000
    zeros = pa.array([0.0] * n)
    cols = {"timestamp_unix": pa.array(range(T0, T0 + n), pa.int64()), **{f"c{i}": zeros for i in range(950)}}
    return _parquet(pa.table(cols), row_group_size=n, use_dictionary=False, compression="zstd")


def arrow_compressed_bomb() -> bytes:
    """A zstd-compressed IPC stream: 12M doubles (96 MB) in one batch, a few KB on disk."""
    import numpy as np

    n = 12_000_000
    return _ipc_stream(pa.table({"timestamp_unix": pa.array(np.full(n, T0, dtype=np.int64)),
                                 "v": pa.array(np.zeros(n))}), compression="zstd")


def arrow_long_string() -> bytes:
    """One 2 MiB string value (the cap is 1 MiB)."""
    return _ipc_stream(pa.table({"timestamp_unix": pa.array([T0], pa.int64()), "note": pa.array(["y" * (2 << 20)])}))


def csv_huge_line() -> bytes:
    """A 24 MiB line with no newline: the CSV block is 512 KiB, so it must fail after reading about
    one block, not read the line whole (the same code refuses a 1 GB line)."""
    return OHLCV_HEADER + b"1700000000," + b"9" * (24 << 20)


def csv_columns(n: int) -> Callable[[], bytes]:
    def build() -> bytes:
        header = ",".join(["timestamp_unix", *(f"c{i}" for i in range(n))])
        row = ",".join([str(T0), *("1" for _ in range(n))])
        return f"{header}\n{row}\n".encode()
    return build


# ---------------------------------------------------------------- malformed
def malformed_utf8() -> bytes:
    return b"timestamp_unix,note\n1700000000,ok\n1700000060,\xff\xfe\xc3\x28bad\n"


def nul_bytes() -> bytes:
    return OHLCV_HEADER + b"1700000000,1.0,2.0,0.5,1\x00.5,10.0\n"


def csv_injection_names() -> bytes:
    return b"timestamp_unix,=cmd|' /C calc'!A0,@SUM(1+1),+1\n1700000000,1,2,3\n"


def duplicate_names() -> bytes:
    return b"timestamp_unix,open,high,low,close,volume,close\n1700000000,1,2,0.5,1.5,10,9\n"


def png_named_parquet() -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"\0\0\0\rIHDR" + bytes(range(256)) * 8


def truncated_gzip() -> bytes:
    data = gzip.compress(OHLCV_HEADER + ohlcv_rows(20_000))
    return data[: len(data) // 2]


def truncated_parquet() -> bytes:
    data = _parquet(pa.table({"timestamp_unix": pa.array(range(T0, T0 + 1000), pa.int64()),
                              "v": pa.array([1.0] * 1000)}))
    return data[: len(data) - 100]


def parquet_string_timestamp_overflow() -> bytes:
    """Digit strings in a string column, one beyond int64: the review's "object store unavailable"
    (pyarrow's cast error was taken for an outage by its module name, so the job was retried)."""
    return _parquet(pa.table({"timestamp": pa.array(["1700000000", "99999999999999999999999"]),
                              "v": pa.array([1.0, 2.0])}))


def timestamps(*values: str) -> Callable[[], bytes]:
    def build() -> bytes:
        return OHLCV_HEADER + b"".join(f"{v},1.0,2.0,0.5,1.5,10.0\n".encode() for v in values)
    return build


ROW = "at row"
CASES: list[FileCase] = [
    FileCase("gzip bomb", gzip_bomb, "bomb.csv.gz", "ohlcv", "expansion_ratio"),
    FileCase("gzip NUL bomb", gzip_nul_bomb, "nul.csv.gz", "ohlcv", "import_block_bytes|expansion|CSV"),
    FileCase("parquet dictionary bomb", parquet_dictionary_bomb, "bomb.parquet", "raw", "expansion_ratio|batch_bytes"),
    FileCase("parquet row group bomb", parquet_row_group_bomb, "rg.parquet", "raw", "import_max_row_group_bytes"),
    FileCase("arrow compressed bomb", arrow_compressed_bomb, "bomb.arrows", "raw", "import_max_batch_bytes"),
    FileCase("arrow 2 MiB string", arrow_long_string, "long.arrows", "raw", "import_max_string_bytes", "both"),
    FileCase("csv 24 MiB single line", csv_huge_line, "line.csv", "ohlcv", "import_block_bytes"),
    FileCase("csv 3,000 columns", csv_columns(3_000), "wide.csv", "raw", "import_max_columns", "both"),
    FileCase("csv 10,000 columns", csv_columns(10_000), "wider.csv", "raw", "import_max_columns", "both"),
    FileCase("malformed UTF-8", malformed_utf8, "utf8.csv", "raw", "UTF-8", "both"),
    FileCase("NUL byte in a number", nul_bytes, "nul.csv", "ohlcv", "close|invalid value", "both"),
    FileCase("CSV injection in column names", csv_injection_names, "inject.csv", "raw", "invalid column names", "both"),
    FileCase("duplicate column names", duplicate_names, "dup.csv", "ohlcv", "duplicate columns", "both"),
    FileCase("header only", lambda: OHLCV_HEADER, "header.csv", "ohlcv", "no data rows", "both"),
    FileCase("empty body", lambda: b"", "empty.csv", "ohlcv", "empty", "blocking"),
    FileCase("PNG named .parquet", png_named_parquet, "image.parquet", "ohlcv", ".", "both"),
    FileCase("truncated gzip", truncated_gzip, "cut.csv.gz", "ohlcv", "gzip|could not be|truncated|CSV", "both"),
    FileCase("truncated parquet", truncated_parquet, "cut.parquet", "raw", "truncated|Parquet", "both"),
    FileCase("timestamp NaN", timestamps("1700000000", "nan"), "nan.csv", "ohlcv", f"{ROW} 2", "both"),
    FileCase("timestamp inf", timestamps("1700000000", "1700000060", "inf"), "inf.csv", "ohlcv", f"{ROW} 3", "both"),
    FileCase("timestamp 1e300", timestamps("1e300"), "huge.csv", "ohlcv", f"{ROW} 1", "both"),
    FileCase("timestamp int64 overflow", timestamps("1700000000", "99999999999999999999999"), "ovf.csv", "ohlcv",
             f"{ROW} 2", "both"),
    FileCase("timestamp int64 overflow, string column", parquet_string_timestamp_overflow, "ovf.parquet", "raw",
             f"{ROW} 2", "both"),
    FileCase("timestamp negative", timestamps("1700000000", "-86400"), "neg.csv", "ohlcv", f"{ROW} 2", "both"),
    FileCase("timestamp year 10000", timestamps("10000-01-01T00:00:00Z"), "y10k.csv", "ohlcv", f"{ROW} 1", "both"),
    # Odd but valid: s, ms, µs and ns in one column land on four distinct, correct instants.
    FileCase("mixed timestamp units", timestamps("1700000000", "1700000060000", "1700000120000000",
                                                 "1700000180000000000"), "mixed.csv", "ohlcv", None, "both", rows=4),
]
