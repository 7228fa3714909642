"""`Client`: the Stage1 REST API from Python (scripts, notebooks, the `stage1` command).

    from stage1.client import Client, ApiError

    with Client() as c:                       # STAGE1_URL / STAGE1_GATEWAY_URL and STAGE1_TOKEN
        for ds in c.datasets.iter(symbol="BTC"):
            print(ds.dataset_slug, ds.ohlcv_rows)
        up = c.uploads.upload("bars.csv", kind="ohlcv", dataset="btc25_3")
        job = c.jobs.watch(up.job_id)         # SSE where the gateway has it, else polling
        c.runs.download_predictions(run_id, "preds.parquet")

Payloads are the service's own msgspec Structs (`stage1.<area>.schemas`), imported when a method
first needs them so that `import stage1.client` stays cheap. Every failure is an `ApiError`
(status, message, details from the `{"error", "details"}` envelope). See docs/client.md.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import msgspec

from stage1.client.errors import ApiError

if TYPE_CHECKING:
    from stage1.client.jobs import Jobs
    from stage1.client.uploads import Uploads
    from stage1.datasets.schemas import Dataset, DatasetDeleted, DatasetIn, DatasetList, Rows
    from stage1.jobs.schemas import JobOut
    from stage1.runs.schemas import Predictions, RunCreated, RunDeleted, RunDetail, RunIn, RunList, RunSummary
    from stage1.simulations.schemas import (
        SimulationDeleted,
        SimulationDetail,
        SimulationIn,
        SimulationList,
        SimulationSummary,
        TradeList,
    )

T = TypeVar("T")
DEFAULT_URL = "http://127.0.0.1:3000"
TOKEN_HEADER = "X-Stage1-Token"  # noqa: S105 - a header name
USER_AGENT = "stage1-client/0.1"
# Bytes read and written per chunk when streaming files to and from disk.
CHUNK = 1024 * 1024
BytesCallback = Callable[[int, int | None], None]  # (bytes so far, total or None)


def _dotenv(path: str) -> dict[str, str]:
    values: dict[str, str] = {}
    try:
        text = Path(path).read_text()
    except OSError:
        return values
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return values


# The local stack's settings file, relative to a checkout of the repository.
LOCAL_ENV_FILE = Path(".state") / "stage1.env"


def config_from_env(environ: dict[str, str] | None = None,
                    default_file: Path | None = LOCAL_ENV_FILE) -> tuple[str, str]:
    """(url, token) from `STAGE1_URL` (or `STAGE1_GATEWAY_URL`) and `STAGE1_TOKEN`; what the
    environment lacks is read from the file `STAGE1_ENV_FILE` names, else from `.state/stage1.env`
    in the working directory (the local stack's settings: run from the repository, `stage1` finds
    the local gateway and its bootstrap token by itself)."""
    env = dict(os.environ if environ is None else environ)
    file = env.get("STAGE1_ENV_FILE") or (str(default_file) if default_file and default_file.is_file() else "")
    if file and not (env.get("STAGE1_TOKEN") and (env.get("STAGE1_URL") or env.get("STAGE1_GATEWAY_URL"))):
        env = {**_dotenv(file), **{k: v for k, v in env.items() if v}}
    url = env.get("STAGE1_URL") or env.get("STAGE1_GATEWAY_URL") or DEFAULT_URL
    return url.rstrip("/"), env.get("STAGE1_TOKEN", "")


def _params(**kwargs: Any) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in kwargs.items() if v is not None}


def _ref(value: Any) -> str:
    """A path segment: ids and slugs are [a-z0-9_-] and UUIDs; anything else is refused here."""
    text = str(value)
    if not text or any(not (c.isascii() and (c.isalnum() or c in "-_")) for c in text):
        raise ApiError(0, f"not an id or slug: {text[:64]!r}")
    return text


class Client:
    """One connection pool to the gateway. Thread-safe for concurrent calls (httpx's pool)."""

    def __init__(self, url: str | None = None, token: str | None = None, *, timeout: float = 60.0,
                 retries: int = 3, transport: httpx.BaseTransport | None = None) -> None:
        env_url, env_token = config_from_env()
        self.url = (url or env_url).rstrip("/")
        self.token = env_token if token is None else token
        self.retries = retries
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if self.token:
            headers[TOKEN_HEADER] = self.token
        self.http = httpx.Client(base_url=self.url, headers=headers, transport=transport,
                                 timeout=httpx.Timeout(timeout, connect=10.0))
        self._store: httpx.Client | None = None
        from stage1.client.jobs import Jobs
        from stage1.client.uploads import Uploads

        self.datasets = Datasets(self)
        self.runs = Runs(self)
        self.simulations = Simulations(self)
        self.jobs: Jobs = Jobs(self)
        self.uploads: Uploads = Uploads(self)

    # -- plumbing
    @property
    def store(self) -> httpx.Client:
        """A client for presigned object-store URLs: no token (the URL is the credential)."""
        if self._store is None:
            self._store = httpx.Client(timeout=httpx.Timeout(300.0, connect=10.0),
                                       headers={"User-Agent": USER_AGENT})
        return self._store

    def close(self) -> None:
        self.http.close()
        if self._store is not None:
            self._store.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    def _send(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None,
              stream: bool = False, timeout: float | None = None) -> httpx.Response:
        """One request with the retry policy: 429 waits for Retry-After (any method: the request
        was not run); 502/503/504 and connection failures are retried for GET only."""
        content = None if body is None else msgspec.json.encode(body)
        headers = {"Content-Type": "application/json"} if content is not None else None
        for attempt in range(self.retries + 1):
            request = self.http.build_request(method, path, params=params, content=content, headers=headers,
                                              timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT)
            try:
                response = self.http.send(request, stream=stream)
            except httpx.TransportError as exc:
                if method == "GET" and attempt < self.retries and isinstance(exc, httpx.ConnectError):
                    time.sleep(0.2 * 2**attempt)
                    continue
                raise ApiError(0, f"cannot reach {self.url}: {type(exc).__name__}: {exc}".rstrip(": "),
                               method=method, url=str(request.url)) from exc
            if response.is_success:
                return response
            retry = attempt < self.retries and (
                response.status_code == 429 or (method == "GET" and response.status_code in (502, 503, 504)))
            body_bytes = response.read()
            response.close()
            if retry:
                wait = response.headers.get("Retry-After", "")
                time.sleep(min(float(wait), 30.0) if wait.isdigit() else 0.5 * 2**attempt)
                continue
            raise ApiError.from_response(response.status_code, body_bytes, method=method, url=str(request.url),
                                         headers=dict(response.headers), reason=response.reason_phrase)
        raise AssertionError("unreachable")

    def request(self, method: str, path: str, type: type[T], *, params: dict[str, Any] | None = None,
                body: Any = None) -> T:
        """A JSON call decoded into `type` (a Struct, or `dict`/`Any` for raw JSON)."""
        response = self._send(method, path, params=params, body=body)
        return self.decode(response, type)

    @staticmethod
    def decode(response: httpx.Response, type: type[T]) -> T:
        try:
            return msgspec.json.decode(response.content, type=type)
        except msgspec.ValidationError as exc:
            raise ApiError(response.status_code, f"unexpected response from {response.request.url.path}: {exc}",
                           method=response.request.method, url=str(response.request.url)) from exc
        except msgspec.DecodeError as exc:
            raise ApiError(response.status_code, f"not JSON from {response.request.url.path}: "
                           f"{response.text[:120]!r}") from exc

    @contextmanager
    def stream(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None,
               timeout: float | None = None) -> Iterator[httpx.Response]:
        response = self._send(method, path, params=params, body=body, stream=True, timeout=timeout)
        try:
            yield response
        finally:
            response.close()

    def download(self, method: str, path: str, dest: str | os.PathLike[str], *, params: dict[str, Any] | None = None,
                 body: Any = None, on_bytes: BytesCallback | None = None,
                 on_job: Callable[[JobOut], None] | None = None, job_timeout: float | None = None) -> Path:
        """Stream a large read to `dest` (written to `dest.part`, renamed when complete).

        The large-read contract (docs/questdb.md): 200 is the file itself; 202 is an export job
        whose finished `result.url` is a presigned download URL — followed here, so the caller
        gets the file either way."""
        dest = Path(dest)
        tmp = dest.with_name(dest.name + ".part")
        with self.stream(method, path, params=params, body=body, timeout=300.0) as response:
            if response.status_code == 202:
                from stage1.jobs.schemas import JobAccepted

                response.read()
                accepted = self.decode(response, JobAccepted)
                job = self.jobs.watch(accepted.job_id, on_update=on_job, timeout=job_timeout)
                if job.status != "COMPLETED":
                    raise ApiError(0, f"export job {job.job_id} {job.status}: {job.error or 'no error text'}",
                                   {"job_id": job.job_id, "status": job.status})
                url = (job.result or {}).get("url") if isinstance(job.result, dict) else None
                if not url:
                    raise ApiError(0, f"export job {job.job_id} has no result.url", {"result": job.result})
                with self.store.stream("GET", url) as remote:
                    if remote.is_error:
                        raise ApiError.from_response(remote.status_code, remote.read(), method="GET",
                                                     reason=remote.reason_phrase)
                    _write(remote, tmp, on_bytes)
            else:
                _write(response, tmp, on_bytes)
        tmp.replace(dest)
        return dest


def _write(response: httpx.Response, tmp: Path, on_bytes: BytesCallback | None) -> None:
    length = response.headers.get("Content-Length")
    total = int(length) if length and length.isdigit() and "content-encoding" not in response.headers else None
    done = 0
    try:
        with open(tmp, "wb") as out:
            for chunk in response.iter_bytes(CHUNK):
                out.write(chunk)
                done += len(chunk)
                if on_bytes:
                    on_bytes(done, total)
    except httpx.TransportError as exc:
        tmp.unlink(missing_ok=True)
        raise ApiError(0, f"download interrupted after {done} bytes: {exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class _Resource:
    def __init__(self, client: Client) -> None:
        self.client = client


def _pages(fetch: Callable[[int], Any], items: str, page: int) -> Iterator[Any]:
    offset = 0
    while True:
        result = fetch(offset)
        batch = getattr(result, items)
        yield from batch
        offset += len(batch)
        if not batch or offset >= result.total:
            return


class Datasets(_Resource):
    def list(self, *, symbol: str | None = None, granularity: str | None = None, search: str | None = None,
             limit: int = 100, offset: int = 0, sort: str | None = None) -> DatasetList:
        from stage1.datasets.schemas import DatasetList

        return self.client.request("GET", "/api/datasets", DatasetList, params=_params(
            symbol=symbol, granularity=granularity, search=search, limit=limit, offset=offset, sort=sort))

    def iter(self, *, page: int = 500, **filters: Any) -> Iterator[Dataset]:
        return _pages(lambda off: self.list(limit=page, offset=off, **filters), "datasets", page)

    def get(self, ref: str | uuid.UUID) -> Dataset:
        """By UUID or slug."""
        from stage1.datasets.schemas import Dataset

        return self.client.request("GET", f"/api/datasets/{_ref(ref)}", Dataset)

    def upsert(self, data: DatasetIn | dict[str, Any], *, record_questdb: bool | None = None) -> Dataset:
        """Create or update by `dataset_slug`."""
        from stage1.datasets.schemas import Dataset

        return self.client.request("POST", "/api/datasets", Dataset, body=data,
                                   params=_params(record_questdb=_flag(record_questdb)))

    def delete(self, ref: str | uuid.UUID, *, cascade: bool = False, drop_questdb: bool = False) -> DatasetDeleted:
        from stage1.datasets.schemas import DatasetDeleted

        return self.client.request("DELETE", f"/api/datasets/{_ref(ref)}", DatasetDeleted,
                                   params=_params(cascade=_flag(cascade), drop_questdb=_flag(drop_questdb)))

    def runs(self, ref: str | uuid.UUID, *, limit: int = 100, offset: int = 0) -> RunList:
        from stage1.runs.schemas import RunList

        return self.client.request("GET", f"/api/datasets/{_ref(ref)}/runs", RunList,
                                   params=_params(limit=limit, offset=offset))

    def rows(self, ref: str | uuid.UUID, kind: str = "ohlcv", *, from_: int | None = None, to: int | None = None,
             columns: list[str] | None = None, limit: int | None = None, offset: int = 0) -> Rows:
        """A JSON page of `ohlcv` or `indicators` rows."""
        from stage1.datasets.schemas import Rows

        if kind not in ("ohlcv", "indicators"):
            raise ApiError(0, "kind is ohlcv or indicators", {"kind": kind})
        return self.client.request("GET", f"/api/datasets/{_ref(ref)}/{kind}", Rows, params=_params(
            format="json", limit=limit, offset=offset, columns=columns, to=to, **{"from": from_}))


def _flag(value: bool | None) -> str | None:
    return None if value is None else ("true" if value else "false")


class Runs(_Resource):
    def list(self, *, dataset: str | None = None, status: str | None = None, measurement: str | None = None,
             search: str | None = None, limit: int = 100, offset: int = 0, sort: str | None = None) -> RunList:
        from stage1.runs.schemas import RunList

        return self.client.request("GET", "/api/runs", RunList, params=_params(
            dataset_id=dataset, status=status, measurement=measurement, search=search, limit=limit, offset=offset,
            sort=sort))

    def iter(self, *, page: int = 500, **filters: Any) -> Iterator[RunSummary]:
        return _pages(lambda off: self.list(limit=page, offset=off, **filters), "runs", page)

    def get(self, run_id: str | uuid.UUID) -> RunDetail:
        from stage1.runs.schemas import RunDetail

        return self.client.request("GET", f"/api/runs/{_ref(run_id)}", RunDetail)

    def create(self, data: RunIn | dict[str, Any]) -> RunCreated:
        """Store a run with its folds, and its predictions inline (`predictions` rows or
        `predictions_csv`) or from an upload (`upload_id` of a `kind="predictions"` upload).

        Inline, everything is written in the request: 201, `status` COMPLETED. From an upload
        whose import is still going: 202, `status` RUNNING and the import's `job_id` — follow it
        with `wait()` (or `client.jobs.watch(created.job_id)`)."""
        from stage1.runs.schemas import RunCreated

        return self.client.request("POST", "/api/runs", RunCreated, body=data)

    def wait(self, created: RunCreated, *, on_update: Callable[[JobOut], None] | None = None,
             timeout: float | None = None) -> RunDetail:
        """The run once its predictions are in: follows its import job if it has one, then reads the
        run back. A run that ended FAILED raises `ApiError` with the run's error."""
        if created.job_id and created.status not in ("COMPLETED", "FAILED"):
            self.client.jobs.watch(created.job_id, on_update=on_update, timeout=timeout)
        run = self.get(created.run_id)
        if run.status != "COMPLETED":
            raise ApiError(0, f"run {run.run_id} is {run.status}: {run.error or 'no error text'}",
                           {"run_id": str(run.run_id), "status": run.status, "job_id": created.job_id})
        return run

    def delete(self, run_id: str | uuid.UUID) -> RunDeleted:
        from stage1.runs.schemas import RunDeleted

        return self.client.request("DELETE", f"/api/runs/{_ref(run_id)}", RunDeleted)

    def predictions(self, run_id: str | uuid.UUID, *, fold: int | None = None, from_: int | None = None,
                    to: int | None = None, limit: int | None = None, offset: int = 0) -> Predictions:
        """One JSON page of predictions (`next_offset` says where the next starts)."""
        from stage1.runs.schemas import Predictions

        return self.client.request("GET", f"/api/runs/{_ref(run_id)}/predictions", Predictions, params=_params(
            format="json", fold=fold, to=to, limit=limit, offset=offset, **{"from": from_}))

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
        path = f"/api/runs/{_ref(run_id)}/predictions"
        params = _params(format="csv", fold=fold)
        if fmt == "csv":
            return self.client.download("GET", path, dest, params=params, on_bytes=on_bytes, on_job=on_job)
        from stage1.client.convert import csv_to_parquet

        tmp_csv = dest.with_name(dest.name + ".csv.part")
        try:
            self.client.download("GET", path, tmp_csv, params=params, on_bytes=on_bytes, on_job=on_job)
            csv_to_parquet(tmp_csv, dest, int_columns=("timestamp", "bar_index", "fold_number"))
        finally:
            tmp_csv.unlink(missing_ok=True)
        return dest


class Simulations(_Resource):
    def list(self, *, run: str | None = None, dataset: str | None = None, limit: int = 100, offset: int = 0,
             sort: str | None = None) -> SimulationList:
        from stage1.simulations.schemas import SimulationList

        return self.client.request("GET", "/api/simulations", SimulationList, params=_params(
            run_id=run, dataset_id=dataset, limit=limit, offset=offset, sort=sort))

    def iter(self, *, page: int = 500, **filters: Any) -> Iterator[SimulationSummary]:
        return _pages(lambda off: self.list(limit=page, offset=off, **filters), "simulations", page)

    def get(self, simulation_id: str | uuid.UUID) -> SimulationDetail:
        from stage1.simulations.schemas import SimulationDetail

        return self.client.request("GET", f"/api/simulations/{_ref(simulation_id)}", SimulationDetail)

    def create(self, data: SimulationIn | dict[str, Any]) -> SimulationDetail:
        """Store a simulation with its trades; the answer carries the server's trade `buckets`."""
        from stage1.simulations.schemas import SimulationDetail

        return self.client.request("POST", "/api/simulations", SimulationDetail, body=data)

    def delete(self, simulation_id: str | uuid.UUID) -> SimulationDeleted:
        from stage1.simulations.schemas import SimulationDeleted

        return self.client.request("DELETE", f"/api/simulations/{_ref(simulation_id)}", SimulationDeleted)

    def trades(self, simulation_id: str | uuid.UUID, *, side: str | None = None, limit: int | None = None,
               offset: int = 0) -> TradeList:
        from stage1.simulations.schemas import TradeList

        return self.client.request("GET", f"/api/simulations/{_ref(simulation_id)}/trades", TradeList,
                                   params=_params(format="json", side=side, limit=limit, offset=offset))
