"""DataFrame reads and writes on the resources (the `frames` extra; docs/client.md, "DataFrames").

Reads are `*_frame` methods next to the JSON ones (`datasets.ohlcv` stays the JSON page its
author wrote; `datasets.ohlcv_frame` is the DataFrame), each with `engine="pandas"|"polars"`:

- whole tables (`ohlcv_frame`, `indicators_frame` without `max_points`, `predictions_frame`,
  `Client.query_frame`) are Parquet written by QuestDB (`POST /api/questdb/export`,
  `format=parquet`); a result too large for one response becomes an export job, followed to its
  presigned URL by `Core.download` (`progress=True` draws a byte bar on stderr);
- `max_points` reads are small (at most that many buckets): the JSON page, typed here;
- `trades_frame` is the server's CSV (trades live in Postgres; the trades endpoint has no
  Parquet), typed here.
Timestamps come back as datetime64[ns, UTC], integer columns as int64.

Writes accept DataFrames (pandas or polars): `runs.create(..., folds=df, predictions=df)`,
`simulations.create(..., trades=df)` inline when small, through an upload (Parquet) when large;
`datasets.upload(ref, frame_or_path, kind=)`.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stage1_client.core import BytesCallback
from stage1_client.errors import ApiError
from stage1_client.resources import Datasets, Runs, Simulations, _unix
from stage1_wire.runs import RunCreated

# Above this much CSV text a DataFrame write goes through an upload instead of the request body
# (the API's JSON body cap is larger; this keeps requests quick and retries cheap).
INLINE_MAX_BYTES = 4 * 1024 * 1024
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def _ident(name: str) -> str:
    """A table or column name put into SQL text: validated, then double-quoted."""
    if not _NAME.fullmatch(name or ""):
        raise ApiError(0, f"not a table or column name: {name[:64]!r}")
    return f'"{name}"'


def _iso(value: int | datetime) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ApiError(0, "start/end datetimes must be timezone-aware", {"value": value.isoformat()})
        value = value.astimezone(UTC)
    else:
        value = datetime.fromtimestamp(int(value), UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def time_sql(table: str, *, start: int | datetime | None = None, end: int | datetime | None = None,
             columns: list[str] | None = None, where: dict[str, int] | None = None) -> str:
    """SELECT over one table between two instants: every value is a validated name, an ISO instant
    built from a number or datetime, or an int — no caller text reaches the SQL."""
    cols = ", ".join(["timestamp", *[_ident(c) for c in columns if c != "timestamp"]]) if columns else "*"
    clauses = []
    if start is not None:
        clauses.append(f"timestamp >= '{_iso(start)}'")
    if end is not None:
        clauses.append(f"timestamp <= '{_iso(end)}'")
    for key, number in (where or {}).items():
        clauses.append(f"{_ident(key)} = {int(number)}")
    # Every piece is a validated name, an instant we formatted or an int (see above).
    where_sql = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    return f"SELECT {cols} FROM {_ident(table)}{where_sql}"  # noqa: S608


@contextmanager
def _scratch(suffix: str) -> Iterator[Path]:
    fd, name = tempfile.mkstemp(prefix="stage1-", suffix=suffix)
    os.close(fd)
    path = Path(name)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def _progress_bar(enabled: bool, title: str) -> tuple[Any, BytesCallback | None, Callable[[Any], None] | None]:
    """A rich byte bar on stderr when asked: (context, on_bytes, on_job)."""
    if not enabled:
        from contextlib import nullcontext

        return nullcontext(), None, None
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    task = bar.add_task(title, total=None)
    return (bar, lambda done, total: bar.update(task, completed=done, total=total),
            lambda job: bar.update(task, description=f"{title}: export job {job.job_id[:8]} {job.status}"))


def export_frame(client: Any, sql: str, *, engine: str = "pandas", progress: bool = False,
                 job_timeout: float | None = None) -> Any:
    """A read-only query as a DataFrame from Parquet that QuestDB wrote (export job when large)."""
    from stage1_client.admin import sql_export
    from stage1_client.frames import read_parquet

    context, on_bytes, on_job = _progress_bar(progress, "read")
    with _scratch(".parquet") as path, context:
        sql_export(client, sql, path, format="parquet", on_bytes=on_bytes, on_job=on_job, job_timeout=job_timeout)
        return read_parquet(path, engine)


def _page_frame(columns: list[str], rows: list[list[Any]], engine: str) -> Any:
    """A JSON page (rows of arrays or objects) typed through Arrow; `timestamp` as UTC."""
    from stage1_client.frames import _need, from_arrow

    pa = _need("pyarrow")
    if rows and isinstance(rows[0], dict):
        rows = [[r.get(c) for c in columns] for r in rows]  # type: ignore[union-attr]
    data = {c: [r[i] for r in rows] for i, c in enumerate(columns)}
    table = pa.table(data) if rows else pa.table({c: pa.array([], pa.float64()) for c in columns})
    if "timestamp" in table.column_names:
        col = table["timestamp"]
        if pa.types.is_string(col.type):
            col = col.cast(pa.timestamp("us", tz="UTC"))
        elif pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
            col = pa.compute.cast(pa.compute.multiply(col.cast(pa.float64()), 1e6), pa.int64()).cast(
                pa.timestamp("us", tz="UTC"))
        table = table.set_column(table.column_names.index("timestamp"), "timestamp", col)
    return from_arrow(table, engine)


def to_arrow(frame: Any) -> Any:
    """A pandas or polars DataFrame (or a pyarrow Table) as a pyarrow Table."""
    from stage1_client.frames import _need

    pa = _need("pyarrow")
    if isinstance(frame, pa.Table):
        return frame
    if hasattr(frame, "to_arrow"):  # polars
        return frame.to_arrow()
    return pa.Table.from_pandas(frame, preserve_index=False)


def _csv_text(table: Any) -> str:
    """CSV with timestamps as ISO-8601 UTC text (what the API's CSV bodies take)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            col = table.column(i)
            if field.type.tz is None:
                col = pc.assume_timezone(col, "UTC")
            table = table.set_column(i, field.name, pc.strftime(col, format="%Y-%m-%dT%H:%M:%SZ"))
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer, pacsv.WriteOptions(quoting_style="needed"))
    return buffer.getvalue().decode()


def _records(frame: Any) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts (timestamps as ISO text), e.g. a folds table."""
    import csv

    return [{k: _cell(v) for k, v in row.items()} for row in csv.DictReader(io.StringIO(_csv_text(to_arrow(frame))))]


def _cell(text: str) -> Any:
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _write_parquet(frame: Any, path: Path) -> Path:
    import pyarrow.parquet as pq

    pq.write_table(to_arrow(frame), path, compression="zstd")
    return path


class FramedDatasets(Datasets):
    def ohlcv_frame(self, ref: str | uuid.UUID, *, start: int | datetime | None = None,
                    end: int | datetime | None = None, max_points: int | None = None,
                    columns: list[str] | None = None, engine: str = "pandas", progress: bool = False) -> Any:
        """OHLCV bars between `start` and `end` (inclusive) as a DataFrame: the whole range as Parquet
        written by QuestDB, or with `max_points` at most that many buckets (the JSON page)."""
        return self._frame(ref, "ohlcv", start, end, max_points, columns, engine, progress)

    def indicators_frame(self, ref: str | uuid.UUID, *, start: int | datetime | None = None,
                         end: int | datetime | None = None, max_points: int | None = None,
                         columns: list[str] | None = None, engine: str = "pandas", progress: bool = False) -> Any:
        return self._frame(ref, "indicators", start, end, max_points, columns, engine, progress)

    def _frame(self, ref: Any, kind: str, start: Any, end: Any, max_points: int | None,
               columns: list[str] | None, engine: str, progress: bool) -> Any:
        if max_points is not None:
            page = self.rows(ref, kind, from_=_unix(start), to=_unix(end), columns=columns, max_points=max_points)
            return _page_frame(page.columns, page.rows, engine)
        dataset = self.get(ref)
        table = dataset.ohlcv_measurement if kind == "ohlcv" else dataset.indicator_measurement
        return export_frame(self.client, time_sql(table, start=start, end=end, columns=columns), engine=engine,
                            progress=progress)

    uploads: Any = None  # the client's Uploads (set by Client)

    def upload(self, ref: str, frame_or_path: Any, *, kind: str = "ohlcv", wait: bool = True,
               timeout: float | None = None) -> Any:
        """Upload bars or indicators into a dataset from a file (CSV, CSV.gz, Parquet, Arrow) or a
        DataFrame (sent as Parquet); with `wait` follow the import and return the finished job
        (FAILED or CANCELLED raise `ApiError`)."""
        if kind not in ("ohlcv", "indicators"):
            raise ApiError(0, "kind is ohlcv or indicators", {"kind": kind})
        with _scratch(".parquet") as tmp:
            path = Path(frame_or_path) if isinstance(frame_or_path, str | os.PathLike) else _write_parquet(
                frame_or_path, tmp)
            up = self.uploads.upload(path, kind=kind, dataset=ref)
        if not wait:
            return up
        job = self.uploads.wait(up, timeout=timeout)
        if job.status != "COMPLETED":
            raise ApiError(0, f"import job {job.job_id} {job.status}: {job.error or 'no error text'}",
                           {"job_id": job.job_id, "status": job.status})
        return job


class FramedRuns(Runs):
    uploads: Any = None

    def predictions_frame(self, run_id: str | uuid.UUID, *, fold: int | None = None, engine: str = "pandas",
                          progress: bool = False) -> Any:
        """A COMPLETED run's predictions (all, or one `fold`) as a DataFrame from Parquet QuestDB wrote."""
        run = self.get(run_id)
        if run.status != "COMPLETED":
            raise ApiError(409, f"the run is {run.status}: its predictions are not available",
                           {"run_id": str(run.run_id), "status": run.status})
        sql = time_sql(run.prediction_measurement, where={"fold_number": fold} if fold is not None else None)
        return export_frame(self.client, sql, engine=engine, progress=progress)

    def search_frame(self, *, filter: str | None = None, sort: str | None = None,  # noqa: A002 - the API's name
                     dataset: str | None = None, limit: int = 100, details: bool = False,
                     engine: str = "pandas") -> Any:
        """The ranked runs of a search (`runs.search`, cursor pages up to `limit` rows) as a DataFrame,
        in rank order: the summary columns (times as UTC timestamps); with `details=True` also one
        column per `hyperparameters.<key>` and `summary_metrics.<key>` (one `get` per run, so keep
        `limit` small)."""
        rows: list[dict[str, Any]] = []
        for summary in self.search_iter(filter=filter, sort=sort, dataset=dataset, page=min(limit, 500)):
            row = _struct_row(summary)
            if details:
                run = self.get(summary.run_id)
                row.update({f"hyperparameters.{k}": v for k, v in run.hyperparameters.items()})
                row.update({f"summary_metrics.{k}": v for k, v in run.summary_metrics.items()})
            rows.append(row)
            if len(rows) >= limit:
                break
        from stage1_client.frames import _need, from_arrow

        pa = _need("pyarrow")
        return from_arrow(pa.Table.from_pylist(rows), engine)

    def create(self, data: Any, *, folds: Any = None, predictions: Any = None) -> RunCreated:  # type: ignore[override]
        """Store a run from a dict (or `RunIn`), with `folds` and `predictions` as lists or DataFrames.

        DataFrame predictions up to `INLINE_MAX_BYTES` of CSV go in the request (`predictions_csv`);
        larger ones are uploaded as Parquet (kind predictions) and the run created with its
        `upload_id` (202 RUNNING: follow it with `runs.wait(created)`)."""
        if folds is None and predictions is None:
            return super().create(data)
        body = dict(data) if isinstance(data, dict) else _as_dict(data)
        if folds is not None:
            body["folds"] = folds if isinstance(folds, list) else _records(folds)
        if predictions is None:
            return super().create(body)
        if isinstance(predictions, list | str):
            body["predictions" if isinstance(predictions, list) else "predictions_csv"] = predictions
            return super().create(body)
        table = to_arrow(predictions)
        text = _csv_text(table)
        if len(text) <= INLINE_MAX_BYTES:
            body["predictions_csv"] = text
            return super().create(body)
        with _scratch(".parquet") as tmp:
            _write_parquet(table, tmp)
            measurement = body.get("prediction_measurement") or f"preds_{uuid.uuid4().hex[:16]}"
            up = self.uploads.upload(tmp, kind="predictions", measurement=measurement)
        body["upload_id"] = up.upload_id  # the run's table is the upload's measurement
        return super().create(body)


class FramedSimulations(Simulations):
    def trades_frame(self, simulation_id: str | uuid.UUID, *, side: str | None = None,
                     engine: str = "pandas") -> Any:
        """Every trade of a simulation as a DataFrame (the server's CSV stream, typed here)."""
        from stage1_client.core import query, segment
        from stage1_client.frames import read_csv

        with _scratch(".csv") as path:
            self.client.download("GET", f"/api/simulations/{segment(simulation_id)}/trades", path,
                                 params=query(format="csv", side=side))
            return read_csv(path, engine, int_columns=("trade_index",),
                            float_columns=("entry_price", "exit_price", "quantity", "pnl", "return_pct"),
                            time_columns=("bar_timestamp", "timestamp"))

    def create(self, data: Any, *, trades: Any = None, trades_path: str | os.PathLike[str] | None = None,  # type: ignore[override]
               wait: bool = True, timeout: float | None = None) -> Any:
        """As `Simulations.create`, and `trades` may be a DataFrame: inline (JSON rows) up to
        `INLINE_MAX_BYTES` of CSV, else uploaded as Parquet (`trades_path`)."""
        if trades is None or isinstance(trades, list):
            if trades is not None:
                data = {**(dict(data) if isinstance(data, dict) else _as_dict(data)), "trades": trades}
            return super().create(data, trades_path=trades_path, wait=wait, timeout=timeout)
        table = to_arrow(trades)
        if len(_csv_text(table)) <= INLINE_MAX_BYTES:
            body = {**(dict(data) if isinstance(data, dict) else _as_dict(data)), "trades": _records(table)}
            return super().create(body, wait=wait, timeout=timeout)
        with _scratch(".parquet") as tmp:
            _write_parquet(table, tmp)
            return super().create(data, trades_path=tmp, wait=wait, timeout=timeout)


def _struct_row(struct: Any) -> dict[str, Any]:
    """A Struct's fields as a row: UUIDs as text, datetimes kept (Arrow types them as UTC timestamps)."""
    import msgspec

    return {k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in msgspec.structs.asdict(struct).items()}


def _as_dict(struct: Any) -> dict[str, Any]:
    import msgspec

    return msgspec.to_builtins(struct)  # type: ignore[no-any-return]

