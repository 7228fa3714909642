"""Open a file as an iterator of Arrow record batches bounded in BYTES (imports/limits.py).

The format is recognised from the first bytes (Parquet `PAR1`, Arrow file `ARROW1`, Arrow stream
continuation marker, gzip magic), falling back to CSV; the upload's file extension only names the
object. Nothing reads a whole file, and every size is checked before the bytes it announces are read:
- CSV is parsed block by block (`block_bytes`): a row longer than a block fails; a .csv.gz may
  not decompress to more than `expansion_ratio` times its size (nor Parquet/Arrow decode to more).
- Parquet: the footer's size, the column count and each row group's uncompressed size come from
  the metadata and are checked before any row is read; batches are sized from the bytes per row,
  string columns are read dictionary-encoded and their decoded size checked before decoding.
- Arrow IPC one message at a time, each checked from its header (imports/ipc.py).
A read that fails is bad data unless the object store itself does not answer (`Source.check`).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from stage1.core.errors import ServiceUnavailable
from stage1.imports.errors import ImportFailed
from stage1.imports.ipc import open_ipc
from stage1.imports.limits import Limits, check_columns, decoded_budget, over
from stage1.uploads.formats import ARROW, CSV, CSV_GZ, FORMATS, PARQUET, format_from_name  # noqa: F401

# Columns whose integer values stay integers; any other integer column of a CSV lands as DOUBLE
# (a column that reads as integers in the first block may hold decimals further down).
INTEGER_COLUMNS = frozenset({"bar_index", "fold_number", "trade_index", "row_id"})
# Most rows per batch handed on from Parquet (fewer when rows are wide: see `_open_parquet`): the
# rows of one ILP request (import_batch_rows' default), so no two batches are joined into a frame;
# 100k gave a 10M-row import 307 MB of peak RSS, 60k ~15 MB less (docs/imports.md, Benchmark).
PARQUET_BATCH_ROWS = 60_000


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

    def __init__(self, open_file: Any, size: int, open_stream: Any = None,
                 check: Callable[[], None] | None = None) -> None:
        self._open_file = open_file  # () -> pyarrow.NativeFile (random access)
        self._open_stream = open_stream  # () -> a sequential stream, if cheaper than random access
        self._check = check  # () -> None, raises if the store holding the bytes does not answer
        self.size = size

    def check(self) -> None:
        if self._check is not None:
            self._check()

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


def read_error(source: Source, exc: BaseException, what: str) -> Exception:
    """A failed read is the file's fault unless the object store does not answer right now: the
    question is put to the store, not guessed from the exception's type."""
    try:
        source.check()
    except Exception as probe:
        return ServiceUnavailable("object store", f"reading the file failed ({str(exc)[:200]}) and the store "
                                  f"does not answer: {str(probe)[:200]}")
    text = str(exc)
    return ImportFailed(f"{what} could not be read: {text[:500]}", {"reason": text[:500]})


def open_batches(source: Source, *, block_size: int | None = None, use_threads: bool = True,
                 hints: dict[str, pa.DataType] | None = None, limits: Limits | None = None) -> Batches:
    """`hints`: types of known columns (by lower-case name) that a CSV must parse as."""
    limits = limits or Limits()
    if block_size is not None:
        limits = Limits(**{**limits.__dict__, "block_bytes": block_size})
    if source.size == 0:
        raise ImportFailed("the file is empty", {"size": 0})
    f = source.open()
    try:
        head = f.read(8)
        f.seek(0)
    except Exception as exc:
        f.close()
        raise read_error(source, exc, "the file") from exc
    fmt = sniff(head)
    if fmt in (CSV, CSV_GZ):
        f.close()
        return _open_csv(source, fmt, limits, use_threads, hints or {})
    try:
        if fmt == PARQUET:
            return _open_parquet(source, f, limits, use_threads)
        schema, batches = open_ipc(f, head, limits)
        return Batches(ARROW, schema, _guard(source, _bounded(batches, limits, source.size), "Arrow IPC data"),
                       None, [f])
    except ImportFailed:
        f.close()
        raise
    except Exception as exc:
        f.close()
        raise read_error(source, exc, f"{fmt} file") from exc


def _open_parquet(source: Source, f: Any, limits: Limits, use_threads: bool) -> Batches:
    # The footer's length is the int32 before the trailing magic: checked before pyarrow reads it.
    if source.size < 12:
        raise ImportFailed("Parquet file is truncated", {"size": source.size})
    f.seek(source.size - 8)
    tail = f.read(8)
    f.seek(0)
    footer = int.from_bytes(tail[:4], "little")
    if tail[4:] != b"PAR1" or footer > source.size - 12:
        raise ImportFailed("Parquet file is truncated or not Parquet (no footer)", {"size": source.size})
    if footer > limits.metadata_bytes:
        raise over("Parquet footer bytes", footer, limits.metadata_bytes, "import_max_metadata_bytes")
    try:
        meta = pq.read_metadata(f)
    except Exception as exc:
        raise ImportFailed(f"Parquet file could not be read: {exc}", {"library": "pyarrow.parquet"}) from exc
    check_columns(meta.num_columns, limits)
    widest = 0
    for i in range(meta.num_row_groups):
        rg = meta.row_group(i)
        size = max(rg.total_byte_size, sum(rg.column(c).total_uncompressed_size for c in range(rg.num_columns)))
        if size > limits.row_group_bytes:
            raise over(f"Parquet row group {i} uncompressed bytes", size, limits.row_group_bytes,
                       "import_max_row_group_bytes", row_group=i)
        widest = max(widest, -(-size // max(1, rg.num_rows)))
    f.seek(0)
    schema = meta.schema.to_arrow_schema()
    # Strings stay dictionary-encoded while read: a dictionary page can expand a million-fold.
    strings = [fld.name for fld in schema if pa.types.is_string(fld.type) or pa.types.is_large_string(fld.type)
               or pa.types.is_binary(fld.type) or pa.types.is_large_binary(fld.type)]
    try:
        # pre_buffer off: the column chunks of a row group are read as they are decoded instead of all
        # up front (peak RSS of a 1Mi-row row group: +59 MB instead of +83 MB; docs/imports.md).
        pf = pq.ParquetFile(f, metadata=meta, read_dictionary=strings or None, pre_buffer=False)
    except Exception as exc:
        raise ImportFailed(f"Parquet file could not be read: {exc}", {"library": "pyarrow.parquet"}) from exc
    rows = max(1, min(PARQUET_BATCH_ROWS, limits.batch_bytes // 4 // max(1, widest)))
    batches = pf.iter_batches(batch_size=rows, use_threads=use_threads)
    return Batches(PARQUET, schema, _guard(source, _bounded(batches, limits, source.size), "Parquet data"),
                   meta.num_rows, [f])


def decoded_bytes(column: pa.Array) -> int:
    """Bytes of a column once dictionary-decoded (only the dictionary values the rows use)."""
    if isinstance(column, pa.DictionaryArray):
        values = column.dictionary
        if pa.types.is_string(values.type) or pa.types.is_binary(values.type) or pa.types.is_large_string(
                values.type) or pa.types.is_large_binary(values.type):
            lengths = pc.take(pc.binary_length(values), column.indices)
            return int(pc.sum(lengths).as_py() or 0) + 8 * len(column)
        return values.type.bit_width // 8 * len(column) if hasattr(values.type, "bit_width") else column.nbytes
    return column.get_total_buffer_size()


def _longest(column: pa.Array) -> int:
    values = column.dictionary if isinstance(column, pa.DictionaryArray) else column
    t = values.type
    if pa.types.is_string(t) or pa.types.is_binary(t) or pa.types.is_large_string(t) or pa.types.is_large_binary(t):
        return int(pc.max(pc.binary_length(values)).as_py() or 0) if len(values) else 0
    return 0


def _decode(batch: pa.RecordBatch) -> pa.RecordBatch:
    if not any(isinstance(c, pa.DictionaryArray) for c in batch.columns):
        return batch
    arrays = [c.dictionary_decode() if isinstance(c, pa.DictionaryArray) else c for c in batch.columns]
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(
        [pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type) for f in batch.schema]))


def _bounded(batches: Iterator[pa.RecordBatch], limits: Limits, file_bytes: int) -> Iterator[pa.RecordBatch]:
    """Each batch's decoded size checked before it is decoded; a batch over the budget is cut into
    slices under it (a single row over it fails), strings over `string_bytes` fail, and the whole
    file may not decode to more than `expansion_ratio` times its size."""
    total, budget = 0, decoded_budget(file_bytes, limits)
    for batch in batches:
        if batch.num_rows == 0:
            continue
        longest = max((_longest(c) for c in batch.columns), default=0)
        if longest > limits.string_bytes:
            raise over("a string value's bytes", longest, limits.string_bytes, "import_max_string_bytes")
        size = sum(decoded_bytes(c) for c in batch.columns)
        total += size
        if total > budget:
            raise over("decoded bytes of the file", total, budget, "import_max_expansion_ratio × the file's size")
        if size <= limits.batch_bytes:
            yield _decode(batch)
            continue
        per_row = -(-size // batch.num_rows)
        if per_row > limits.batch_bytes:
            raise over("one row's bytes", per_row, limits.batch_bytes, "import_max_batch_bytes")
        step = max(1, limits.batch_bytes // per_row)
        for start in range(0, batch.num_rows, step):
            yield _decode(batch.slice(start, step))


def _guard(source: Source, batches: Iterator[pa.RecordBatch], what: str) -> Iterator[pa.RecordBatch]:
    try:
        yield from batches
    except ImportFailed:
        raise
    except (pa.ArrowException, OSError) as exc:
        raise read_error(source, exc, what) from exc


class _GzipBudget:
    """The decompressed stream of a .csv.gz, refusing to yield more than `limit` bytes: a gzip
    bomb stops at the limit instead of filling the disk, memory or the import's time."""

    def __init__(self, stream: Any, limit: int) -> None:
        self._stream, self._limit, self.read_bytes = stream, limit, 0
        self.closed = False

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n if n is not None and n >= 0 else 1 << 20)
        self.read_bytes += len(data)
        if self.read_bytes > self._limit:
            raise over("decompressed bytes of the .csv.gz", self.read_bytes, self._limit,
                       "import_max_expansion_ratio × the file's size")
        return bytes(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True
        self._stream.close()


def _csv_stream(source: Source, fmt: str, limits: Limits) -> Any:
    raw = source.stream()
    if fmt != CSV_GZ:
        return raw
    return _GzipBudget(pa.CompressedInputStream(raw, "gzip"), decoded_budget(source.size, limits))


_STRADDLE = "straddling object straddles two block boundaries"


def _csv_failure(source: Source, exc: BaseException, limits: Limits, names: list[str] | None = None) -> Exception:
    if isinstance(exc, ImportFailed):
        return exc
    found = exc.__context__ if isinstance(exc.__context__, ImportFailed) else None
    if found is not None:
        return found
    if _STRADDLE in str(exc):
        return ImportFailed(f"a CSV row is longer than {limits.block_bytes:,} bytes (import_block_bytes)",
                            {"limit": "import_block_bytes", "max": limits.block_bytes})
    if isinstance(exc, pa.ArrowInvalid):
        return _csv_error(exc, names)
    return read_error(source, exc, "CSV")


def _open_csv(source: Source, fmt: str, limits: Limits, use_threads: bool,
              hints: dict[str, pa.DataType]) -> Batches:
    read = pcsv.ReadOptions(block_size=limits.block_bytes, use_threads=use_threads)
    # First pass over the first block only: the column names and inferred types.
    probe_stream = _csv_stream(source, fmt, limits)
    try:
        probe = pcsv.open_csv(probe_stream, read_options=read)
        schema = probe.schema
    except Exception as exc:
        raise _csv_failure(source, exc, limits) from exc
    finally:
        probe_stream.close()
    check_columns(len(schema), limits)
    types = {}
    for fld in schema:
        name = fld.name.strip().lower()
        if name in hints:
            types[fld.name] = hints[name]
        elif pa.types.is_null(fld.type) or (pa.types.is_integer(fld.type) and name not in INTEGER_COLUMNS
                                          and name not in ("timestamp", "timestamp_unix")):
            types[fld.name] = pa.float64()
    stream = _csv_stream(source, fmt, limits)
    try:
        reader = pcsv.open_csv(stream, read_options=read, convert_options=pcsv.ConvertOptions(column_types=types))
    except Exception as exc:
        stream.close()
        raise _csv_failure(source, exc, limits, schema.names) from exc
    return Batches(fmt, reader.schema, _csv_batches(source, reader, reader.schema.names, limits), None,
                   [reader, stream])


def _csv_batches(source: Source, reader: Any, names: list[str], limits: Limits) -> Iterator[pa.RecordBatch]:
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except Exception as exc:
            raise _csv_failure(source, exc, limits, names) from exc
        yield batch
