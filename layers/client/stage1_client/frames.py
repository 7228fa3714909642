"""Pages of rows as pandas DataFrames (the `frames` extra: `pip install './layers/client[frames]'`).

pandas is imported here, when a frame is asked for, never by the rest of the client."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stage1_client.errors import ApiError
from stage1_wire.compare import RunComparison
from stage1_wire.datasets import Rows
from stage1_wire.runs import Predictions

if TYPE_CHECKING:
    import pandas


def to_frame(page: Rows | Predictions) -> pandas.DataFrame:
    """A page of `datasets.rows()` or `runs.predictions()` as a DataFrame, columns in the API's order."""
    try:
        import pandas
    except ImportError as exc:
        raise ApiError(0, "DataFrames need pandas: pip install './layers/client[frames]'") from exc
    records = page.rows if isinstance(page, Rows) else page.predictions
    return pandas.DataFrame.from_records(records, columns=page.columns)


def comparison_frame(table: RunComparison) -> pandas.DataFrame:
    """`runs.compare()` as a DataFrame: index `key`, one column per run id (values as the API gave
    them, object dtype), then `section` and `differs`."""
    try:
        import pandas
    except ImportError as exc:
        raise ApiError(0, "DataFrames need pandas: pip install './layers/client[frames]'") from exc
    ids = [str(r.run_id) for r in table.runs]
    frame = pandas.DataFrame([row.values for row in table.rows], columns=ids, dtype=object,
                             index=pandas.Index([row.key for row in table.rows], name="key"))
    frame["section"] = [row.section for row in table.rows]
    frame["differs"] = [row.differs for row in table.rows]
    return frame


# ---------------------------------------------------------------- Arrow → pandas / polars
ENGINES = ("pandas", "polars")


def _need(module: str) -> object:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ApiError(0, f"DataFrames need {module}: pip install './layers/client[frames]'"
                       + (" polars" if module == "polars" else "")) from exc


def normalize(table: object) -> object:
    """Every timestamp column as timestamp[ns, UTC] (QuestDB writes microseconds, naive: they are UTC)."""
    pa = _need("pyarrow")
    fields = []
    for field in table.schema:  # type: ignore[attr-defined]
        if pa.types.is_timestamp(field.type):
            fields.append(pa.field(field.name, pa.timestamp("ns", tz="UTC")))
        else:
            fields.append(field)
    schema = pa.schema(fields)
    return table if schema.equals(table.schema) else table.cast(schema)  # type: ignore[attr-defined]


def from_arrow(table: object, engine: str = "pandas") -> object:
    """A pyarrow Table as a pandas (default) or polars DataFrame, timestamps as datetime64[ns, UTC]."""
    if engine not in ENGINES:
        raise ApiError(0, "engine is pandas or polars", {"engine": engine})
    table = normalize(table)
    if engine == "polars":
        polars = _need("polars")
        return polars.from_arrow(table)  # type: ignore[attr-defined]
    _need("pandas")
    return table.to_pandas()  # type: ignore[attr-defined]


def read_parquet(path: object, engine: str = "pandas") -> object:
    pq = _need("pyarrow.parquet")
    return from_arrow(pq.read_table(path), engine)  # type: ignore[attr-defined]


def read_csv(path: object, engine: str = "pandas", *, int_columns: tuple[str, ...] = (),
             float_columns: tuple[str, ...] = (), time_columns: tuple[str, ...] = ("timestamp",)) -> object:
    """A CSV the server wrote: the named integer columns int64, the time columns parsed as UTC
    (ISO text or unix seconds), the rest as pyarrow infers them."""
    pa = _need("pyarrow")
    pacsv = _need("pyarrow.csv")
    import csv as _csv

    with open(path, newline="") as f:  # type: ignore[call-overload]
        header = next(_csv.reader(f), [])
    types = {c: pa.int64() for c in int_columns if c in header}
    types.update({c: pa.float64() for c in float_columns if c in header})  # "100" is a price, not an int
    table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(  # type: ignore[attr-defined]
        column_types=types, timestamp_parsers=["%Y-%m-%dT%H:%M:%S", pacsv.ISO8601]))  # type: ignore[attr-defined]
    for name in time_columns:
        if name not in table.column_names:
            continue
        col = table[name]
        if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
            import pyarrow.compute as pc

            micros = pc.cast(pc.multiply(pc.cast(col, pa.float64()), 1_000_000), pa.int64())
            col = pc.cast(micros, pa.timestamp("us", tz="UTC"))
            table = table.set_column(table.column_names.index(name), name, col)
    return from_arrow(table, engine)


_QUEST_TYPES = {"LONG": "int64", "INT": "int32", "SHORT": "int16", "BYTE": "int8", "DOUBLE": "float64",
                "FLOAT": "float32", "BOOLEAN": "bool"}


def query_frame(out: object, engine: str = "pandas") -> object:
    """A `QueryOut` (JSON rows of `POST /api/questdb/query`) as a DataFrame, typed by its columns:
    TIMESTAMP/DATE as UTC timestamps, LONG/INT as ints, DOUBLE as floats, the rest as text."""
    pa = _need("pyarrow")
    arrays, names = [], []
    for i, column in enumerate(out.columns):  # type: ignore[attr-defined]
        values = [row[i] for row in out.rows]  # type: ignore[attr-defined]
        kind = column.type.upper()
        if kind in ("TIMESTAMP", "DATE", "TIMESTAMP_NS"):
            array = pa.array(values, pa.string()).cast(pa.timestamp("ns", tz="UTC")) if values else \
                pa.array([], pa.timestamp("ns", tz="UTC"))
        elif kind in _QUEST_TYPES:
            array = pa.array(values, getattr(pa, _QUEST_TYPES[kind])())
        else:
            array = pa.array([None if v is None else str(v) for v in values], pa.string())
        arrays.append(array)
        names.append(column.name)
    return from_arrow(pa.table(arrays, names=names), engine)
