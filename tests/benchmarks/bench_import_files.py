"""The benchmark files of `bench_import.py` and `bench_import_stages.py`: one OHLCV series of 1-minute
bars in every format the importer reads, made once (streaming: never whole in memory) in a directory
outside the repo and reused across runs.

    epoch   CSV, `timestamp_unix` in epoch seconds (`ohlcv_<rows>.csv`)
    iso     CSV, `timestamp` as ISO-8601 microsecond UTC (`2017-07-14T02:40:00.000000Z`)
    gz      the epoch CSV gzip-compressed
    parquet `timestamp` as timestamp[us, UTC], the writer's default row groups (1Mi rows), snappy
    arrow   Arrow IPC file, `timestamp` as timestamp[us, UTC], batches of 65,536 rows
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

HEADER = b"timestamp_unix,open,high,low,close,volume\n"
FORMATS = ("epoch", "iso", "gz", "parquet", "arrow")
SUFFIX = {"epoch": ".csv", "iso": ".iso.csv", "gz": ".csv.gz", "parquet": ".parquet", "arrow": ".arrow"}
# The upload's filename per format (the importer sniffs the bytes; the name only has to be allowed).
FILENAME = {"epoch": "bars.csv", "iso": "bars.csv", "gz": "bars.csv.gz", "parquet": "bars.parquet",
            "arrow": "bars.arrow"}


def path_of(directory: Path, rows: int, fmt: str) -> Path:
    return directory / f"ohlcv_{rows}{SUFFIX[fmt]}"


def _done(path: Path, rows: int) -> bool:
    marker = path.with_name(path.name + ".rows")
    return path.exists() and marker.exists() and marker.read_text() == str(rows)


def _mark(path: Path, rows: int) -> None:
    path.with_name(path.name + ".rows").write_text(str(rows))


def make_epoch_csv(path: Path, rows: int) -> None:
    """1-minute bars from 2017 on; written in chunks of 1M rows."""
    import numpy as np

    old = path.with_suffix(".rows")  # the marker of earlier versions of this benchmark
    if path.exists() and old.exists() and old.read_text().strip() == str(rows):
        _mark(path, rows)
    if _done(path, rows):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(42)
    tmp = path.with_suffix(".part")
    with open(tmp, "wb") as f:
        f.write(HEADER)
        for start in range(0, rows, 1_000_000):
            n = min(1_000_000, rows - start)
            ts = 1_500_000_000 + 60 * np.arange(start, start + n)
            o = 100 + rng.random(n) * 10
            c = o + rng.standard_normal(n)
            h = np.maximum(o, c) + rng.random(n)
            lo = np.minimum(o, c) - rng.random(n)
            v = rng.random(n) * 1000
            np.savetxt(f, np.column_stack([ts, o, h, lo, c, v]), delimiter=",",
                       fmt=["%d", "%.4f", "%.4f", "%.4f", "%.4f", "%.3f"])
    tmp.rename(path)
    _mark(path, rows)


def _epoch_batches(epoch: Path):
    """The epoch CSV's batches with `timestamp` as timestamp[us, UTC] in place of `timestamp_unix`."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    reader = pcsv.open_csv(epoch, read_options=pcsv.ReadOptions(block_size=4 << 20),
                           convert_options=pcsv.ConvertOptions(column_types={
                               "timestamp_unix": pa.int64(), "open": pa.float64(), "high": pa.float64(),
                               "low": pa.float64(), "close": pa.float64(), "volume": pa.float64()}))
    for batch in reader:
        ts = pc.multiply(batch.column(0), pa.scalar(1_000_000, pa.int64())).cast(pa.timestamp("us", "UTC"))
        yield pa.RecordBatch.from_arrays([ts, *batch.columns[1:]], names=["timestamp", *batch.schema.names[1:]])


def make(directory: Path, rows: int, fmt: str) -> Path:
    """The file of `rows` rows in `fmt` (made from the epoch CSV the first time)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    epoch = path_of(directory, rows, "epoch")
    make_epoch_csv(epoch, rows)
    path = path_of(directory, rows, fmt)
    if fmt == "epoch" or _done(path, rows):
        return path
    tmp = path.with_name(path.name + ".part")
    if fmt == "gz":
        with open(epoch, "rb") as src, gzip.open(tmp, "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst, 8 << 20)
    elif fmt == "iso":
        with open(tmp, "wb") as sink:
            sink.write(HEADER.replace(b"timestamp_unix", b"timestamp"))
            writer = None
            for batch in _epoch_batches(epoch):
                text = pc.strftime(batch.column(0), format="%Y-%m-%dT%H:%M:%SZ")  # %S carries the 6 µs digits
                out = pa.RecordBatch.from_arrays([text, *batch.columns[1:]], names=batch.schema.names)
                if writer is None:
                    writer = pcsv.CSVWriter(sink, out.schema, write_options=pcsv.WriteOptions(
                        include_header=False, quoting_style="none"))
                writer.write_batch(out)
            writer.close()
    elif fmt == "parquet":
        writer = None
        for batch in _epoch_batches(epoch):
            if writer is None:
                writer = pq.ParquetWriter(str(tmp), batch.schema, compression="snappy")
            writer.write_batch(batch, row_group_size=1 << 20)
        writer.close()
    elif fmt == "arrow":
        writer = None
        with pa.OSFile(str(tmp), "wb") as sink:
            for batch in _epoch_batches(epoch):
                if writer is None:
                    writer = pa.ipc.new_file(sink, batch.schema)
                for start in range(0, batch.num_rows, 65_536):
                    writer.write_batch(batch.slice(start, 65_536))
            writer.close()
    else:
        raise ValueError(fmt)
    tmp.rename(path)
    _mark(path, rows)
    return path
