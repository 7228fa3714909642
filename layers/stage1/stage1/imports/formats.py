"""Open a file as an iterator of bounded Arrow record batches.

The format is recognised from the first bytes (Parquet `PAR1`, Arrow file `ARROW1`, Arrow stream
continuation marker, gzip magic), falling back to CSV; the upload's file extension only names the
object. Nothing reads a whole file: CSV is parsed block by block (`block_size`), Parquet batch by
batch (`iter_batches`), Arrow IPC one record batch at a time.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from stage1.imports.errors import ImportFailed
from stage1.uploads.formats import ARROW, CSV, CSV_GZ, FORMATS, PARQUET, format_from_name  # noqa: F401

# Columns whose integer values stay integers; any other integer column of a CSV lands as DOUBLE
# (a column that reads as integers in the first block may hold decimals further down).
INTEGER_COLUMNS = frozenset({"bar_index", "fold_number", "trade_index", "row_id"})
# Rows per batch handed on from Parquet (a batch is also the unit of an ILP request).
PARQUET_BATCH_ROWS = 100_000


def sniff(head: bytes) -> str:
    if head[:4] == b"PAR1":
        return PARQUET
    if head[:6] == b"ARROW1" or head[:4] == b"\xff\xff\xff\xff":
        return ARROW
    if head[:2] == b"\x1f\x8b":
        return CSV_GZ
    return CSV


@dataclass
class Batches:
    """The batches of one file, with what is known about it before reading them all."""

    format: str
    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]
    total_rows: int | None = None  # exact when the format says (Parquet), else None
    closers: list[Any] = field(default_factory=list)

    def close(self) -> None:
        for c in self.closers:
            with contextlib.suppress(Exception):  # best effort: the source is being abandoned
                c.close()


class Source:
    """Where the bytes are: a random-access file opener (S3 via pyarrow.fs, or a memory buffer)."""

    def __init__(self, open_file: Any, size: int, open_stream: Any = None) -> None:
        self._open_file = open_file  # () -> pyarrow.NativeFile (random access)
        self._open_stream = open_stream  # () -> a sequential stream, if cheaper than random access
        self.size = size

    def open(self) -> Any:
        return self._open_file()

    def stream(self) -> Any:
        return self._open_stream() if self._open_stream is not None else self._open_file()

    @classmethod
    def from_bytes(cls, data: bytes) -> Source:
        return cls(lambda: pa.BufferReader(data), len(data))


def _csv_error(exc: Exception, names: list[str] | None = None) -> ImportFailed:
    """pyarrow's message, plus the column's name where it gives the column's (0-based) number."""
    text = str(exc)
    details: dict[str, Any] = {"library": "pyarrow.csv", "reason": text[:500]}
    found = re.search(r"CSV column #(\d+)", text)
    if found and names and int(found.group(1)) < len(names):
        details["column"] = names[int(found.group(1))]
        text = f"column {details['column']!r}: {text}"
    return ImportFailed(f"CSV could not be parsed: {text[:500]}", details)


def open_batches(source: Source, *, block_size: int = 4 << 20, use_threads: bool = True,
                 hints: dict[str, pa.DataType] | None = None) -> Batches:
    """`hints`: types of known columns (by lower-case name) that a CSV must parse as."""
    f = source.open()
    try:
        head = f.read(8)
        f.seek(0)
    except Exception:
        f.close()
        raise
    fmt = sniff(head)
    if fmt in (CSV, CSV_GZ):
        f.close()
        return _open_csv(source, fmt, block_size, use_threads, hints or {})
    if fmt == PARQUET:
        try:
            pf = pq.ParquetFile(f)
        except Exception as exc:
            f.close()
            raise ImportFailed(f"Parquet file could not be read: {exc}", {"library": "pyarrow.parquet"}) from exc
        return Batches(PARQUET, pf.schema_arrow, _guard(pf.iter_batches(batch_size=PARQUET_BATCH_ROWS,
                                                                         use_threads=use_threads), "Parquet"),
                       pf.metadata.num_rows, [f])
    try:
        if head[:6] == b"ARROW1":
            reader = ipc.open_file(f)
            batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
            return Batches(ARROW, reader.schema, _guard(batches, "Arrow IPC"), None, [f])
        stream = ipc.open_stream(f)
        return Batches(ARROW, stream.schema, _guard(iter(stream), "Arrow IPC"), None, [stream, f])
    except ImportFailed:
        f.close()
        raise
    except Exception as exc:
        f.close()
        raise ImportFailed(f"Arrow IPC file could not be read: {exc}", {"library": "pyarrow.ipc"}) from exc


def _guard(batches: Iterator[pa.RecordBatch], what: str) -> Iterator[pa.RecordBatch]:
    try:
        yield from batches
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        raise ImportFailed(f"{what} data could not be read: {exc}", {"reason": str(exc)[:500]}) from exc


def _csv_stream(source: Source, fmt: str) -> Any:
    raw = source.stream()
    return pa.CompressedInputStream(raw, "gzip") if fmt == CSV_GZ else raw


def _open_csv(source: Source, fmt: str, block_size: int, use_threads: bool,
              hints: dict[str, pa.DataType]) -> Batches:
    read = pcsv.ReadOptions(block_size=block_size, use_threads=use_threads)
    # First pass over the first block only: the column names and inferred types.
    probe_stream = _csv_stream(source, fmt)
    try:
        probe = pcsv.open_csv(probe_stream, read_options=read)
        schema = probe.schema
    except (pa.ArrowInvalid, OSError) as exc:
        raise _csv_error(exc) from exc
    finally:
        probe_stream.close()
    types = {}
    for fld in schema:
        name = fld.name.strip().lower()
        if name in hints:
            types[fld.name] = hints[name]
        elif pa.types.is_null(fld.type) or (pa.types.is_integer(fld.type) and name not in INTEGER_COLUMNS
                                          and name not in ("timestamp", "timestamp_unix")):
            types[fld.name] = pa.float64()
    stream = _csv_stream(source, fmt)
    try:
        reader = pcsv.open_csv(stream, read_options=read, convert_options=pcsv.ConvertOptions(column_types=types))
    except (pa.ArrowInvalid, OSError) as exc:
        stream.close()
        raise _csv_error(exc, schema.names) from exc
    return Batches(fmt, reader.schema, _csv_batches(reader, reader.schema.names), None, [reader, stream])


def _csv_batches(reader: Any, names: list[str]) -> Iterator[pa.RecordBatch]:
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except (pa.ArrowInvalid, OSError) as exc:
            raise _csv_error(exc, names) from exc
        yield batch
