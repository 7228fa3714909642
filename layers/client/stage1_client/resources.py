"""Datasets, runs and simulations: list, iterate, get, create, delete, and their row pages and files."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from stage1_client.core import BytesCallback, Core, Resource, cursor_pages, flag, pages, query, segment
from stage1_client.errors import ApiError
from stage1_client.jobs import Jobs
from stage1_wire.compare import COMPARE_MAX_RUNS, RunComparison
from stage1_wire.datasets import Dataset, DatasetDeleted, DatasetIn, DatasetList, DownsampledRows, Rows
from stage1_wire.jobs import JobOut
from stage1_wire.runs import (
    DownsampledPredictions,
    FoldIn,
    FoldsAdded,
    Predictions,
    RunComplete,
    RunCreated,
    RunDeleted,
    RunDetail,
    RunIn,
    RunList,
    RunSummary,
)
from stage1_wire.simulations import (
    EquityCurve,
    SimulationDeleted,
    SimulationDetail,
    SimulationIn,
    SimulationList,
    SimulationSummary,
    TradeList,
)


class Datasets(Resource):
    def list(self, *, symbol: str | None = None, granularity: str | None = None, search: str | None = None,
             limit: int = 100, offset: int = 0, sort: str | None = None) -> DatasetList:

        return self.client.request("GET", "/api/datasets", DatasetList, params=query(
            symbol=symbol, granularity=granularity, search=search, limit=limit, offset=offset, sort=sort))

    def iter(self, *, page: int = 500, **filters: Any) -> Iterator[Dataset]:
        return pages(lambda off: self.list(limit=page, offset=off, **filters), "datasets", page)

    def get(self, ref: str | uuid.UUID) -> Dataset:
        """By UUID or slug."""

        return self.client.request("GET", f"/api/datasets/{segment(ref)}", Dataset)

    def upsert(self, data: DatasetIn | dict[str, Any], *, record_questdb: bool | None = None) -> Dataset:
        """Create or update by `dataset_slug`."""

        return self.client.request("POST", "/api/datasets", Dataset, body=data,
                                   params=query(record_questdb=flag(record_questdb)))

    def delete(self, ref: str | uuid.UUID, *, cascade: bool = False, drop_questdb: bool = False) -> DatasetDeleted:

        return self.client.request("DELETE", f"/api/datasets/{segment(ref)}", DatasetDeleted,
                                   params=query(cascade=flag(cascade), drop_questdb=flag(drop_questdb)))

    def runs(self, ref: str | uuid.UUID, *, limit: int = 100, offset: int = 0) -> RunList:

        return self.client.request("GET", f"/api/datasets/{segment(ref)}/runs", RunList,
                                   params=query(limit=limit, offset=offset))

    def rows(self, ref: str | uuid.UUID, kind: str = "ohlcv", *, from_: int | None = None, to: int | None = None,
             columns: list[str] | None = None, limit: int | None = None, offset: int = 0,
             max_points: int | None = None) -> Rows:
        """A JSON page of `ohlcv` or `indicators` rows; with `max_points` at most that many SAMPLE BY
        buckets (a `DownsampledRows`: `bucket_seconds`, `downsampled`)."""

        if kind not in ("ohlcv", "indicators"):
            raise ApiError(0, "kind is ohlcv or indicators", {"kind": kind})
        return self.client.request(
            "GET", f"/api/datasets/{segment(ref)}/{kind}", Rows if max_points is None else DownsampledRows,
            params=query(format="json", limit=limit, offset=offset, columns=columns, to=to, max_points=max_points,
                         **{"from": from_}))

    def ohlcv(self, ref: str | uuid.UUID, *, start: int | datetime | None = None, end: int | datetime | None = None,
              max_points: int | None = None, columns: list[str] | None = None, limit: int | None = None,
              offset: int = 0) -> Rows:
        """OHLCV rows between `start` and `end` (unix seconds or aware datetimes, inclusive); with
        `max_points` at most that many buckets (first open, max high, min low, last close, sum volume)."""
        return self.rows(ref, "ohlcv", from_=_unix(start), to=_unix(end), columns=columns, limit=limit,
                         offset=offset, max_points=max_points)

    def indicators(self, ref: str | uuid.UUID, *, start: int | datetime | None = None,
                   end: int | datetime | None = None, max_points: int | None = None,
                   columns: list[str] | None = None, limit: int | None = None, offset: int = 0) -> Rows:
        """Indicator rows, as `ohlcv`; downsampled buckets hold each column's last value."""
        return self.rows(ref, "indicators", from_=_unix(start), to=_unix(end), columns=columns, limit=limit,
                         offset=offset, max_points=max_points)



class Comparison(RunComparison):
    """`runs.compare()`'s table (`stage1_wire.compare.RunComparison`) with `.to_frame()`."""

    def to_frame(self) -> Any:
        """A pandas DataFrame (the `frames` extra; pandas is imported only now)."""
        from stage1_client.frames import comparison_frame

        return comparison_frame(self)


class Runs(Resource):
    def __init__(self, client: Core, jobs: Jobs) -> None:
        super().__init__(client)
        self.jobs = jobs

    def list(self, *, dataset: str | None = None, status: str | None = None, measurement: str | None = None,
             search: str | None = None, limit: int = 100, offset: int = 0, sort: str | None = None) -> RunList:

        return self.client.request("GET", "/api/runs", RunList, params=query(
            dataset_id=dataset, status=status, measurement=measurement, search=search, limit=limit, offset=offset,
            sort=sort))

    def iter(self, *, page: int = 500, **filters: Any) -> Iterator[RunSummary]:
        return pages(lambda off: self.list(limit=page, offset=off, **filters), "runs", page)

    def search(self, *, filter: str | None = None, sort: str | None = None,  # noqa: A002 - the API's name
               dataset: str | None = None, limit: int = 100, cursor: str | None = None) -> RunList:
        """One page of the runs a filter expression matches, ranked by `sort`, e.g.
        `search(filter="summary_metrics.sharpe > 1.2 and status = 'COMPLETED'", sort="-summary_metrics.sharpe")`
        (docs/resources.md, "Search and rank"). Pass the page's `next_cursor` as `cursor` for the next."""
        return self.client.request("GET", "/api/runs", RunList, params=query(
            filter=filter, sort=sort, dataset_id=dataset, limit=limit, cursor=cursor))

    def search_iter(self, *, filter: str | None = None, sort: str | None = None,  # noqa: A002
                    dataset: str | None = None, page: int = 500) -> Iterator[RunSummary]:
        """Every run of a search, page by page with the cursor (stable under ties and inserts)."""
        return cursor_pages(lambda cur: self.search(filter=filter, sort=sort, dataset=dataset, limit=page,
                                                    cursor=cur), "runs")

    def get(self, run_id: str | uuid.UUID) -> RunDetail:

        return self.client.request("GET", f"/api/runs/{segment(run_id)}", RunDetail)

    def create(self, data: RunIn | dict[str, Any]) -> RunCreated:
        """Store a run with its folds, and its predictions inline (`predictions` rows or
        `predictions_csv`) or from an upload (`upload_id` of a `kind="predictions"` upload).

        Inline, everything is written in the request: 201, `status` COMPLETED. From an upload
        whose import is still going: 202, `status` RUNNING and the import's `job_id` — follow it
        with `wait()` (or `client.jobs.watch(created.job_id)`)."""

        return self.client.request("POST", "/api/runs", RunCreated, body=data)

    def wait(self, created: RunCreated, *, on_update: Callable[[JobOut], None] | None = None,
             timeout: float | None = None) -> RunDetail:
        """The run once its predictions are in: follows its import job if it has one, then reads the
        run back. A run that ended FAILED raises `ApiError` with the run's error."""
        if created.job_id and created.status not in ("COMPLETED", "FAILED"):
            self.jobs.watch(created.job_id, on_update=on_update, timeout=timeout)
        run = self.get(created.run_id)
        if run.status != "COMPLETED":
            raise ApiError(0, f"run {run.run_id} is {run.status}: {run.error or 'no error text'}",
                           {"run_id": str(run.run_id), "status": run.status, "job_id": created.job_id})
        return run

    def add_folds(self, run_id: str | uuid.UUID, folds: list[FoldIn | dict[str, Any]], *,
                  predictions: list[dict[str, Any]] | str | None = None) -> FoldsAdded:
        """Add completed folds to a run created with `status="RUNNING"`, with their predictions (JSON
        rows or CSV text; each row's `fold_number` one of `folds`). Atomic per request: the folds are
        visible once their predictions are stored. Re-sending a stored fold unchanged is a no-op."""
        body: dict[str, Any] = {"folds": folds}
        if isinstance(predictions, str):
            body["predictions_csv"] = predictions
        elif predictions is not None:
            body["predictions"] = predictions
        return self.client.request("POST", f"/api/runs/{segment(run_id)}/folds", FoldsAdded, body=body)

    def complete(self, run_id: str | uuid.UUID, *, summary_metrics: dict[str, Any] | None = None,
                 completed_at: str | datetime | None = None) -> RunDetail:
        """End a RUNNING run: COMPLETED with its final `summary_metrics`; its predictions become readable."""
        at = completed_at.isoformat() if isinstance(completed_at, datetime) else completed_at
        return self.client.request("POST", f"/api/runs/{segment(run_id)}/complete", RunDetail,
                                   body=RunComplete(summary_metrics=summary_metrics, completed_at=at))

    def delete(self, run_id: str | uuid.UUID) -> RunDeleted:

        return self.client.request("DELETE", f"/api/runs/{segment(run_id)}", RunDeleted)

    def compare(self, run_ids: list[str | uuid.UUID], *, frame: bool = False) -> Comparison | Any:
        """2-50 runs side by side (`GET /api/runs/compare`): a `RunComparison` (rows = keys such as
        `hyperparameters.max_depth` or `folds.3.metrics.auc`, `values` one per run in the order
        given, `differs`), or with `frame=True` a pandas DataFrame (the same as `.to_frame()` of the
        table; the `frames` extra)."""
        table = self.client.request("GET", "/api/runs/compare", Comparison, params={"run_ids": _run_ids(run_ids)})
        return table.to_frame() if frame else table

    def compare_csv(self, run_ids: list[str | uuid.UUID]) -> str:
        """The same table as CSV text (`format=csv`: key, section, differs, one column per run)."""
        with self.client.stream("GET", "/api/runs/compare",
                                params={"run_ids": _run_ids(run_ids), "format": "csv"}) as response:
            return response.read().decode()

    def predictions(self, run_id: str | uuid.UUID, *, fold: int | None = None, from_: int | None = None,
                    to: int | None = None, limit: int | None = None, offset: int = 0,
                    max_points: int | None = None) -> Predictions:
        """One JSON page of predictions (`next_offset` says where the next starts); with `max_points`
        at most that many buckets, each column its last value (`DownsampledPredictions`)."""

        kind = Predictions if max_points is None else DownsampledPredictions
        return self.client.request("GET", f"/api/runs/{segment(run_id)}/predictions", kind, params=query(
            format="json", fold=fold, to=to, limit=limit, offset=offset, max_points=max_points, **{"from": from_}))

    def download_predictions(self, run_id: str | uuid.UUID, dest: str | os.PathLike[str], *,
                             format: str | None = None, fold: int | None = None,
                             on_bytes: BytesCallback | None = None,
                             on_job: Callable[[JobOut], None] | None = None) -> Path:
        """All predictions of a run to a file, streamed: CSV as the server writes it, or Parquet
        (`format="parquet"` or a `.parquet` name) converted from that CSV stream with pyarrow in
        bounded batches. Neither is ever held whole in memory."""
        dest = Path(dest)
        fmt = format or ("parquet" if dest.suffix.lower() in (".parquet", ".pq") else "csv")
        if fmt not in ("csv", "parquet"):
            raise ApiError(0, "format is csv or parquet", {"format": fmt})
        path = f"/api/runs/{segment(run_id)}/predictions"
        params = query(format="csv", fold=fold)
        if fmt == "csv":
            return self.client.download("GET", path, dest, params=params, on_bytes=on_bytes, on_job=on_job)
        from stage1_client.convert import csv_to_parquet

        tmp_csv = dest.with_name(dest.name + ".csv.part")
        try:
            self.client.download("GET", path, tmp_csv, params=params, on_bytes=on_bytes, on_job=on_job)
            csv_to_parquet(tmp_csv, dest, int_columns=("timestamp", "bar_index", "fold_number"))
        finally:
            tmp_csv.unlink(missing_ok=True)
        return dest


class Simulations(Resource):
    def list(self, *, run: str | None = None, dataset: str | None = None, limit: int = 100, offset: int = 0,
             sort: str | None = None) -> SimulationList:

        return self.client.request("GET", "/api/simulations", SimulationList, params=query(
            run_id=run, dataset_id=dataset, limit=limit, offset=offset, sort=sort))

    def iter(self, *, page: int = 500, **filters: Any) -> Iterator[SimulationSummary]:
        return pages(lambda off: self.list(limit=page, offset=off, **filters), "simulations", page)

    def search(self, *, filter: str | None = None, sort: str | None = None,  # noqa: A002 - the API's name
               dataset: str | None = None, run: str | None = None, limit: int = 100,
               cursor: str | None = None) -> SimulationList:
        """One page of the simulations a filter expression matches (`summary_metrics.<key>`,
        `config.<key>`, columns), ranked by `sort`; `next_cursor` is the next page's `cursor`."""
        return self.client.request("GET", "/api/simulations", SimulationList, params=query(
            filter=filter, sort=sort, dataset_id=dataset, run_id=run, limit=limit, cursor=cursor))

    def get(self, simulation_id: str | uuid.UUID) -> SimulationDetail:

        return self.client.request("GET", f"/api/simulations/{segment(simulation_id)}", SimulationDetail)

    uploads: Any = None  # the client's Uploads (set by Client): create(trades_path=...) sends the file first

    def create(self, data: SimulationIn | dict[str, Any], *, trades_path: str | os.PathLike[str] | None = None,
               wait: bool = True, timeout: float | None = None) -> SimulationDetail:
        """Store a simulation with its trades; the answer carries the server's trade `buckets`.

        With `trades_path` (CSV, CSV.gz, Parquet or Arrow with `timestamp`, `side`, `entry_price`,
        `exit_price`, `quantity`, `pnl`, optional `return_pct`, other columns kept in `extra`) the file
        is uploaded as an upload of kind `trades` and the simulation created with its
        `trades_upload_id`: no body-size cap. With `wait` this returns once the simulation is
        COMPLETED (its import followed, then polled); FAILED raises `ApiError` with its error."""
        if trades_path is None:
            return self.client.request("POST", "/api/simulations", SimulationDetail, body=data)
        if self.uploads is None:
            raise ApiError(0, "trades_path needs the Client's uploads")
        upload = self.uploads.upload(trades_path, kind="trades", measurement=f"trades_{uuid.uuid4().hex[:16]}")
        body = (msgspec.structs.replace(data, trades_upload_id=uuid.UUID(upload.upload_id))
                if isinstance(data, SimulationIn) else {**data, "trades_upload_id": upload.upload_id})
        created = self.client.request("POST", "/api/simulations", SimulationDetail, body=body)
        if not wait or created.status not in ("PENDING", "RUNNING"):
            return created
        self.uploads.wait(upload, timeout=timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while (sim := self.get(created.simulation_id)).status in ("PENDING", "RUNNING"):
            if deadline is not None and time.monotonic() > deadline:
                raise ApiError(0, f"simulation {sim.simulation_id} still {sim.status} after {timeout} s",
                               {"simulation_id": str(sim.simulation_id), "status": sim.status})
            time.sleep(0.5)
        if sim.status != "COMPLETED":
            raise ApiError(0, f"simulation {sim.simulation_id} is {sim.status}: {sim.error or 'no error text'}",
                           {"simulation_id": str(sim.simulation_id), "status": sim.status})
        return sim

    def delete(self, simulation_id: str | uuid.UUID) -> SimulationDeleted:

        return self.client.request("DELETE", f"/api/simulations/{segment(simulation_id)}", SimulationDeleted)

    def trades(self, simulation_id: str | uuid.UUID, *, side: str | None = None, limit: int | None = None,
               offset: int = 0) -> TradeList:

        return self.client.request("GET", f"/api/simulations/{segment(simulation_id)}/trades", TradeList,
                                   params=query(format="json", side=side, limit=limit, offset=offset))

    def equity(self, simulation_id: str | uuid.UUID, *, start: int | datetime | None = None,
               end: int | datetime | None = None, max_points: int | None = None, limit: int | None = None,
               offset: int = 0) -> EquityCurve:
        """The equity curve (cumulative PnL); with `max_points` at most that many buckets of last,
        min and max equity."""

        return self.client.request("GET", f"/api/simulations/{segment(simulation_id)}/equity", EquityCurve,
                                   params=query(format="json", to=_unix(end), limit=limit, offset=offset,
                                                max_points=max_points, **{"from": _unix(start)}))


def _unix(value: int | datetime | None) -> int | None:
    """Unix seconds of a `start`/`end` argument (an aware datetime, or already seconds)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ApiError(0, "start/end datetimes must be timezone-aware", {"value": value.isoformat()})
        return int(value.timestamp())
    return value


def _run_ids(run_ids: list[str | uuid.UUID]) -> str:
    """The `run_ids` parameter; more than the server takes is refused here, before the request."""
    ids = [segment(r) for r in run_ids]
    if len(ids) > COMPARE_MAX_RUNS:
        raise ApiError(0, f"compare takes at most {COMPARE_MAX_RUNS} runs", {"count": len(ids)})
    return ",".join(ids)
