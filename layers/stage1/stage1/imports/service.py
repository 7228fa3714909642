"""The importer's work: S3 event records or a dispatched job → the job claimed, the object
streamed into QuestDB, the job (and for dataset uploads the dataset row) updated.

All or nothing, through a staging table (docs/imports.md): the rows go to the job's own table
`<target>__s<8 hex of the job id>` (registered to the job, role `staging`), then into the target in
ONE `INSERT ... SELECT` (one WAL transaction: readers see every row of the import or none; DEDUP
UPSERT KEYS keeps one copy). The target belongs to the dataset (dataset imports) or is a plain
measurement shared by plain imports; a job never drops it, only its own staging table, which a
retry drops and refills from the start. A table registered to a run, simulation or another
dataset is refused (409 text in the job's error).

Failures are classified by where they come from: the file (the job FAILS with a message naming the
row, column or limit) or a backing service that does not answer when asked (the job is released
with exponential backoff and retried until `import_outage_deadline_seconds` after the outage began).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import msgspec

from stage1.core import db
from stage1.core.errors import Conflict
from stage1.core.logging import get_logger, log_fields
from stage1.core.questdb import get_questdb, ident
from stage1.core.settings import get_settings
from stage1.datasets import versions
from stage1.imports.core import ImportStats, copy_into, import_file, staging_name, table_stats, wait_applied
from stage1.imports.errors import ImportFailed
from stage1.imports.events import S3Event
from stage1.imports.formats import Source
from stage1.imports.limits import Limits
from stage1.imports.result import ImportFailure, ImportResult
from stage1.imports.rowhash import RowHasher, staging_txn, verified
from stage1.jobs import worker
from stage1.jobs.service import FAILED, PENDING, Job, JobAborted, find_job
from stage1.jobs.worker import JobFailed, Lease, Outcome, answer
from stage1.timeseries import ownership as own
from stage1.timeseries.fingerprint import Fingerprint
from stage1.timeseries.kinds import SPECS, Kind, drop_table, ensure_table
from stage1.timeseries.timestamps import micros_to_unix
from stage1.uploads.chunks import parse_chunk_key

log = get_logger("imports.service")
JOB_TYPE = "import"

_fs: Any = None
S3_READ_BUFFER = 8 << 20


def s3_filesystem() -> Any:
    """pyarrow's native S3 client (ranged, streaming reads without the GIL); same settings as boto3."""
    global _fs
    if _fs is None:
        from pyarrow import fs

        settings = get_settings()
        kwargs: dict[str, Any] = {"region": settings.store.s3_region, "connect_timeout": 3, "request_timeout": 60}
        if settings.store.s3_endpoint:
            url = httpx.URL(settings.store.s3_endpoint)
            kwargs["endpoint_override"] = f"{url.host}:{url.port or (443 if url.scheme == 'https' else 80)}"
            kwargs["scheme"] = url.scheme
        if settings.store.s3_access_key:
            kwargs["access_key"] = settings.store.s3_access_key
            kwargs["secret_key"] = settings.store.s3_secret_key
        _fs = fs.S3FileSystem(**kwargs)
    return _fs


def object_source(bucket: str, key: str) -> Source | None:
    """The object as a random-access source, or None if it does not exist (yet)."""
    from pyarrow import fs

    path = f"{bucket}/{key}"
    info = s3_filesystem().get_file_info(path)
    if info.type != fs.FileType.File:
        return None
    # CSV is read front to back: one buffered stream (8 MiB GETs) instead of a ranged GET per block.
    return Source(lambda: s3_filesystem().open_input_file(path), int(info.size),
                  lambda: s3_filesystem().open_input_stream(path, compression=None, buffer_size=S3_READ_BUFFER),
                  check=lambda: _object_answers(path))


def _object_answers(path: str) -> None:
    """Raises if the object store does not answer (a failed read was then an outage, not the file)."""
    s3_filesystem().get_file_info(path)


# ---------------------------------------------------------------- events
def handle_records(event: S3Event, owner: str | None = None) -> list[dict[str, Any]]:
    """S3 ObjectCreated records (keys already URL-decoded by `S3Event`). Each object names its
    upload, hence its job; other events and unknown objects are ignored."""
    out = []
    for record in event.Records:
        if not record.created:
            continue
        bucket, key = record.s3.bucket.name or get_settings().store.bucket, record.s3.object.key
        if parse_chunk_key(key) is not None:
            # A chunk of a chunked upload: imported on its own, into the job's staging table.
            from stage1.imports.chunks import import_chunk  # (it builds on this module)

            out.append(import_chunk(bucket, key, owner or f"importer-{uuid.uuid4().hex[:12]}"))
            continue
        job_id = mark_uploaded(key)
        if job_id is None:
            log_fields(log, 20, "object without an upload: ignored", bucket=bucket, key=key)
            out.append({"key": key, "status": "IGNORED"})
            continue
        # The event says the object arrived: the worker records it in the job (`ready`) and runs it.
        out.append({"key": key, **run_job(job_id, owner, arrived=True)})
    return out


def mark_uploaded(key: str) -> str | None:
    """The object of an upload exists: the upload is UPLOADED. Its job id, or None (no upload)."""
    with db.connection() as conn:
        row = conn.execute(
            "update stage1_uploads set status = 'UPLOADED', updated_at = now() where object_key = %s "
            "returning job_id", (key,),
        ).fetchone()
    return None if row is None else str(row["job_id"])


# ---------------------------------------------------------------- one job
def run_job(job_id: str, owner: str | None = None, *, arrived: bool = False) -> dict[str, Any]:
    """Run one import job in the job worker (claim, lease, outcome: `stage1.jobs.worker`); its
    `Outcome` as JSON. Idempotent: a job that is not PENDING is left alone, so duplicate events and
    nudges are harmless. `arrived`: an event says the object is there (the job is marked ready)."""
    job = find_job(job_id)
    if job is not None and job.payload.get("chunked"):
        from stage1.imports.chunks import run_chunked_job  # (it builds on this module)

        return run_chunked_job(job.job_id, owner)
    return answer(worker.run_job(job_id, ImportWork(), owner, note={"ready": True} if arrived else None))


# Plain measurement imports (an upload or a blocking import without a dataset) share their tables.
_PLAIN = ("upload", "job")


def _target_owner(job: Job) -> own.Owner:
    payload = job.payload
    if payload.get("dataset_id"):
        return own.Owner("dataset", payload["dataset_id"])
    if payload.get("upload_id"):
        return own.Owner("upload", payload["upload_id"])
    return own.Owner("job", job.job_id)


def _claim_tables(target: str, target_owner: own.Owner, kind: Kind, staging: str, job_owner: own.Owner) -> None:
    """May this job write `target`? It is registered to the job's dataset, or to nobody (claimed
    now), or — for a plain import — to another plain import. Anything else: ImportFailed with the
    409 text naming the owner. The staging table is registered to the job (owned)."""
    exists = get_questdb().table_exists(target)
    staging_exists = get_questdb().table_exists(staging)
    with db.connection() as conn:
        if staging_exists and (reg := own.owner_of(conn, staging)) is not None and reg.owner != job_owner:
            raise ImportFailed(f"the staging table {staging} belongs to {reg.owner.kind} {reg.owner.id}",
                               {"table": staging})
        if staging_exists and reg is None:  # a table of that name the service did not make: not ours to drop
            raise ImportFailed(f"a table named {staging} already exists and is not this import's", {"table": staging})
        try:
            own.claim(conn, target, target_owner, kind.value, exists=exists)
        except Conflict as exc:
            reg = own.owner_of(conn, target)
            if reg is None or not (target_owner.kind in _PLAIN and reg.owner.kind in _PLAIN):
                raise ImportFailed(exc.message, {**(exc.details or {}), "status": 409}) from None
        own.claim(conn, staging, job_owner, "staging", exists=False)


def _quiet(heartbeat: Callable[[], None]) -> Callable[[], None]:
    def beat() -> None:
        with contextlib.suppress(JobAborted):
            heartbeat()
    return beat


def _drop_staging(staging: str, job_owner: own.Owner) -> None:
    """Drop the job's own staging table, then its registration (kept if the drop failed, so the
    sweeper's cleanup finds it). Never raises: the job's outcome is already decided."""
    try:
        with db.connection() as conn:
            reg = own.owner_of(conn, staging)
        if reg is None or reg.owner != job_owner:
            return  # never claimed (the target was refused): nothing of ours to drop
        drop_table(staging)
        with db.connection() as conn:
            own.release(conn, job_owner, [staging])
    except Exception as exc:
        log_fields(log, 30, "staging table not dropped (the sweeper will)", table=staging, error=str(exc)[:300])


def _staging(job: Job) -> tuple[str, own.Owner]:
    return staging_name(ident(job.payload["measurement"]), job.job_id), own.Owner("job", job.job_id)


class ImportWork:
    """An import job's own work, run by `stage1.jobs.worker.run_job`: the object into the job's
    staging table, then into the target in one statement. Job state is the worker's."""

    prefix = "importer"
    heartbeat_seconds = None  # the import reports progress itself (per batch, and while QuestDB applies)

    def __init__(self) -> None:
        self.source: Source | None = None

    def before_claim(self, job: Job) -> Outcome | None:
        payload = job.payload
        self.source = object_source(payload["bucket"], payload["key"])
        if self.source is None:
            if payload.get("ready"):  # it was there (event, nudge or inline body) and is gone: never runs
                raise JobFailed(f"the object {payload['key']} no longer exists", summary="object gone")
            # Dispatched before the object arrived: stay PENDING, the event (or the sweeper) will come.
            return Outcome(job_id=job.job_id, status=PENDING, reason="object not uploaded yet")
        if payload.get("upload_id") and self.source.size != payload.get("size"):
            # Whatever path brought us here (event, nudge, sweeper): an object that is not the size its
            # upload declared is deleted and its job failed (by uploads), never imported.
            from stage1.uploads.service import refuse_mismatch

            error = refuse_mismatch(payload["key"], self.source.size)
            if error is not None:
                return Outcome(job_id=job.job_id, status=FAILED, error=error)
        return None

    def stopped(self, job: Job, why: str) -> None:
        # Failed or cancelled: nothing of the job is kept. Released (an outage) or lost (another
        # worker has it now): the staging table stays for the retry, which drops and refills it.
        if why in (worker.FAILED, worker.CANCELLED):
            _drop_staging(*_staging(job))

    def run(self, job: Job, lease: Lease) -> ImportResult:
        try:
            return self._run(job, lease)
        except ImportFailed as exc:
            details = {**exc.details, "rows_committed": 0, "staging_dropped": True}
            failure = ImportFailure(error_details=details, measurement=job.payload["measurement"])
            raise JobFailed(exc.message, result=msgspec.to_builtins(failure), details=details) from exc

    def _run(self, job: Job, lease: Lease) -> ImportResult:
        source = self.source
        assert source is not None  # before_claim found it
        payload = job.payload
        kind, target = Kind(payload["kind"]), ident(payload["measurement"])
        staging, job_owner = _staging(job)
        granularity = payload.get("granularity")
        started = time.monotonic()

        def prepare(_plan: Any) -> None:
            ensure_table(kind, staging, granularity)

        log_fields(log, 20, "import started", table=target, staging=staging, kind=kind.value, key=payload["key"],
                   bytes=source.size, attempt=job.attempts)
        _claim_tables(target, _target_owner(job), kind, staging, job_owner)
        drop_table(staging)  # an earlier attempt's rows: a retry starts from an empty staging table
        # A first dataset import (the staging table will become the target): the importer computes
        # the fingerprint's sums as it sends, so QuestDB need not scan the table again.
        hasher = (RowHasher(list(SPECS[kind].columns))
                  if payload.get("dataset_id") and not get_questdb().table_exists(target) else None)
        stats = load(source, kind, staging, lease.progress, prepare=prepare, hasher=hasher)
        if hasher is not None and hasher.reason is not None:
            log_fields(log, 20, "fingerprint left to QuestDB", table=target, reason=hasher.reason)
        return commit_staging(job, lease, Loaded(stats.format, stats.rows, stats.first_ts, stats.last_ts,
                                                 stats.columns, source.size, stats.hashed), started)


def load(source: Source, kind: Kind, table: str, progress: Callable[[int, int | None], None], *,
         prepare: Callable[[Any], None] | None = None, hasher: RowHasher | None = None) -> ImportStats:
    """`import_file` with the settings' tuning and limits (one object, or one chunk)."""
    settings = get_settings()
    tuning = settings.imports
    return import_file(source, kind, table, prepare=prepare, progress=progress,
                       senders=tuning.import_senders, block_size=tuning.import_block_bytes,
                       batch_rows=tuning.import_batch_rows, frame_bytes=tuning.import_frame_bytes,
                       limits=Limits.from_settings(settings), hasher=hasher)


class Loaded(msgspec.Struct, frozen=True):
    """What the staging table holds once every row of the import is in it."""

    format: str
    rows: int
    first_ts: int | None  # microseconds
    last_ts: int | None
    columns: list[str] | None
    bytes: int
    hashed: Any = None  # the importer's row-hash sums (rowhash.Hashed) of a first dataset import, else None


def commit_staging(job: Job, lease: Lease, loaded: Loaded, started: float) -> ImportResult:
    """The commit phase of an import (one object, or every chunk of a chunked upload): the job's
    staging table into its target in one statement, the dataset row and version brought up to date,
    the staging table dropped. Runs under the job's lease; `begin_commit` is the point of no return."""
    payload = job.payload
    kind, target = Kind(payload["kind"]), ident(payload["measurement"])
    staging, job_owner = _staging(job)
    granularity = payload.get("granularity")
    wait_applied(staging, heartbeat=lease.beat)
    txn = staging_txn(staging) if loaded.hashed is not None else None
    lease.beat()
    lease.begin_commit()  # a cancel from here on is refused: the copy cannot be undone
    copy_started = time.monotonic()
    # A target that does not exist yet becomes the staging table (a rename); else one INSERT ... SELECT.
    how = copy_into(staging, target, timeout=max(60.0, loaded.rows / 50_000),
                    create=lambda: ensure_table(kind, target, granularity))  # IF NOT EXISTS: concurrent imports safe
    # The rows are in the target now; the dataset row is brought up to date.
    applied = wait_applied(target, heartbeat=_quiet(lease.beat))
    copy_seconds = time.monotonic() - copy_started
    fp_source = None
    if payload.get("dataset_id"):
        dataset, table_now = _update_dataset(payload["dataset_id"], kind, target)
        known = _importer_fingerprint(target, loaded.hashed if how == "renamed" else None, txn)
        # A new dataset version if the content changed (fingerprint first, then a short transaction)
        dataset.update(versions.after_import(payload["dataset_id"], kind.value, target,
                                             upload_id=payload.get("upload_id"), job_id=job.job_id, known=known))
        fp_source = "importer" if known is not None else "questdb"
    else:
        dataset, table_now = None, table_stats(target)
    seconds = round(time.monotonic() - started, 3)
    result = ImportResult(
        measurement=target, kind=kind.value, format=loaded.format, rows=loaded.rows, rows_written=loaded.rows,
        table_rows=table_now.rows, bytes=loaded.bytes, first_ts=micros_to_unix(loaded.first_ts),
        last_ts=micros_to_unix(loaded.last_ts), columns=loaded.columns, seconds=seconds, wal_applied=applied,
        staging_copy_seconds=round(copy_seconds, 3), upload_id=payload.get("upload_id"), dataset=dataset,
        fingerprint_source=fp_source,
    )
    _drop_staging(staging, job_owner)
    lease.count(loaded.rows)
    log_fields(log, 20, "import completed", rows=loaded.rows, seconds=seconds,
               rows_per_s=int(loaded.rows / max(seconds, 1e-9)), fingerprint_source=fp_source)
    return result


def _importer_fingerprint(target: str, hashed: Any, txn: int | None) -> Fingerprint | None:
    """The importer's fingerprint of a target the staging table became, when provably the one QuestDB
    would compute (`rowhash.verified`); None: QuestDB computes it (`versions.after_import`)."""
    if hashed is None:
        return None
    known = verified(target, hashed, txn)
    if isinstance(known, str):
        log_fields(log, 20, "fingerprint left to QuestDB", table=target, reason=known)
        return None
    return known


def _update_dataset(dataset_id: str, kind: Kind, target: str) -> tuple[dict[str, Any], Any]:
    """The dataset row's counts and bounds from the target as it is now. The row is locked while
    the (fast, 5 s-bounded) count runs, so of concurrent imports the last to count writes last:
    the row never goes back to an older count."""
    prefix = "ohlcv" if kind == Kind.OHLCV else "indicator"
    with db.connection() as conn:
        conn.execute("select 1 from stage1_datasets where dataset_id = %s for update", (dataset_id,))
        stats = table_stats(target, timeout=5.0)
        values = {"rows": stats.rows, "first_ts": micros_to_unix(stats.first_ts),
                  "last_ts": micros_to_unix(stats.last_ts)}
        conn.execute(
            f"update stage1_datasets set {prefix}_rows = %s, {prefix}_first_ts = %s, {prefix}_last_ts = %s, "  # noqa: S608 - fixed names
            "updated_at = now() where dataset_id = %s",
            (values["rows"], values["first_ts"], values["last_ts"], dataset_id),
        )
    return {"dataset_id": dataset_id, f"{prefix}_rows": values["rows"], f"{prefix}_first_ts": values["first_ts"],
            f"{prefix}_last_ts": values["last_ts"]}, stats
