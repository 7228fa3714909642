"""CSV → Parquet on the client, in bounded batches (pyarrow's streaming CSV reader)."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

BLOCK_BYTES = 8 * 1024 * 1024


def csv_to_parquet(src: Path, dest: Path, *, int_columns: Iterable[str] = ()) -> int:
    """Convert `src` to `dest` one block at a time; returns the rows written. Types are fixed from
    the header (the named integer columns int64, every other column float64 when it is numeric,
    else string), so a column that is empty in the first block cannot change type later."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    with open(src, newline="") as f:
        header = next(csv.reader(f), [])
    ints = set(int_columns)
    types = {name: (pa.int64() if name in ints else pa.float64()) for name in header}
    tmp = dest.with_name(dest.name + ".part")
    rows = 0
    options = pacsv.ConvertOptions(column_types=types, strings_can_be_null=True)
    try:
        reader = pacsv.open_csv(src, read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES), convert_options=options)
    except pa.ArrowInvalid:  # a non-numeric column: let pyarrow infer the others' types from the first block
        reader = pacsv.open_csv(src, read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES),
                                convert_options=pacsv.ConvertOptions(
                                    column_types={k: v for k, v in types.items() if k in ints}))
    with reader:
        writer = pq.ParquetWriter(tmp, reader.schema, compression="zstd")
        try:
            for batch in reader:
                writer.write_batch(batch)
                rows += batch.num_rows
        finally:
            writer.close()
    tmp.replace(dest)
    return rows
