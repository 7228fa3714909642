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

from collections.abc import Callable

import httpx

from stage1_client.config import config_from_env
from stage1_client.core import Core
from stage1_client.jobs import Jobs
from stage1_client.resources import Datasets, Runs, Simulations
from stage1_client.uploads import Uploads
from stage1_wire.jobs import JobOut

__all__ = ["Client", "config_from_env"]


class Client(Core):
    """A `Core` with every resource of the API on it: `datasets`, `runs`, `simulations`, `jobs`, `uploads`."""

    def __init__(self, url: str | None = None, token: str | None = None, *, timeout: float = 60.0,
                 retries: int = 3, transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(url, token, timeout=timeout, retries=retries, transport=transport)
        self.jobs = Jobs(self)
        self.datasets = Datasets(self)
        self.runs = Runs(self, self.jobs)
        self.simulations = Simulations(self)
        self.uploads = Uploads(self, jobs=self.jobs, datasets=self.datasets)
        self.simulations.uploads = self.uploads  # simulations.create(trades_path=...) uploads first

    def watch_job(self, job_id: str, *, on_update: Callable[[JobOut], None] | None = None,
                  timeout: float | None = None) -> JobOut:
        return self.jobs.watch(job_id, on_update=on_update, timeout=timeout)
