"""`Client`: the Stage1 REST API from Python (scripts, notebooks, the `stage1` command).

    from stage1_client import Client, ApiError

    with Client() as c:                       # STAGE1_URL / STAGE1_GATEWAY_URL and STAGE1_TOKEN
        for ds in c.datasets.iter(symbol="BTC"):
            print(ds.dataset_slug, ds.ohlcv_rows)
        up = c.uploads.upload("bars.csv", kind="ohlcv", dataset="btc25_3")
        job = c.jobs.watch(up.job_id)         # SSE where the gateway has it, else polling
        c.runs.download_predictions(run_id, "preds.parquet")

Payloads are the API's msgspec Structs (`stage1_wire.<area>`, shared with the server). Every
failure is an `ApiError` (status, message, details from the `{"error", "details"}` envelope).
See docs/client.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from stage1_client.admin import Tokens, health, readiness, sql_export, sql_query
from stage1_client.config import config_from_env
from stage1_client.core import BytesCallback, Core
from stage1_client.framed import FramedDatasets, FramedRuns, FramedSimulations
from stage1_client.jobs import Jobs
from stage1_client.retry import RetryPolicy
from stage1_client.uploads import Uploads
from stage1_wire.health import Liveness, Readiness
from stage1_wire.jobs import JobOut
from stage1_wire.sql import QueryOut

__all__ = ["Client", "config_from_env"]


class Client(Core):
    """A `Core` with every resource of the API on it: `datasets`, `runs`, `simulations`, `jobs`,
    `uploads`, `tokens`, and `query`/`query_frame`/`export`/`health`/`ready`.

    `url`/`token`/`profile` resolve as docs/client.md says (flag > env > profile > local stack);
    `retry` is the one retry policy of every request (`stage1_client.retry.RetryPolicy`)."""

    def __init__(self, url: str | None = None, token: str | None = None, *, timeout: float = 60.0,
                 retries: int = 3, retry: RetryPolicy | None = None, profile: str | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(url, token, timeout=timeout, retries=retries, retry=retry, profile=profile,
                         transport=transport)
        self.jobs = Jobs(self)
        self.datasets = FramedDatasets(self)
        self.runs = FramedRuns(self, self.jobs)
        self.simulations = FramedSimulations(self)
        self.uploads = Uploads(self, jobs=self.jobs, datasets=self.datasets)
        self.tokens = Tokens(self)
        self.simulations.uploads = self.uploads  # simulations.create(trades_path=...) uploads first
        self.datasets.uploads = self.uploads     # datasets.upload(ref, frame_or_path)
        self.runs.uploads = self.uploads         # runs.create(predictions=<large DataFrame>)

    def watch_job(self, job_id: str, *, on_update: Callable[[JobOut], None] | None = None,
                  timeout: float | None = None) -> JobOut:
        return self.jobs.watch(job_id, on_update=on_update, timeout=timeout)

    # -- read-only SQL and the service's health
    def query(self, sql: str, *, limit: int | None = None) -> QueryOut:
        """Read-only SQL → JSON rows (`columns`, `rows`, `truncated` past `limit`)."""
        return sql_query(self, sql, limit=limit)

    def query_frame(self, sql: str, *, engine: str = "pandas", progress: bool = False) -> Any:
        """Read-only SQL → a DataFrame, every row, from Parquet written by QuestDB (an export job
        and its presigned URL when large; `progress=True` draws a byte bar)."""
        from stage1_client.framed import export_frame

        return export_frame(self, sql, engine=engine, progress=progress)

    def export(self, sql: str, dest: str | os.PathLike[str], *, format: str | None = None, mode: str = "auto",
               on_bytes: BytesCallback | None = None, on_job: Callable[[JobOut], None] | None = None) -> Path:
        """Read-only SQL → a CSV or Parquet file (by `format` or the name), following the export job."""
        return sql_export(self, sql, dest, format=format, mode=mode, on_bytes=on_bytes, on_job=on_job)

    def health(self) -> Liveness:
        return health(self)

    def ready(self) -> Readiness:
        return readiness(self)
