"""File → QuestDB: batches from `formats`, rows from `normalize`, sent over ILP/HTTP with the
questdb client's `Sender.dataframe`.

Throughput comes from overlapping the three costs on a small machine: pyarrow parses the next CSV
block (its own threads, GIL released) while `senders` threads each serialise a batch and wait for
QuestDB to commit the previous one (one ILP/HTTP request = one transaction per batch). Memory is
bounded by bytes: pyarrow's CSV reader holds about 35 × `block_size`, every batch a format yields is
under `Limits.batch_bytes` (imports/formats.py), and at most `2 × senders + 2` frames exist at once
(a queue of `senders` frames, one in each sender's ILP buffer, one being built), each of at most
`batch_rows` rows AND about `frame_bytes` bytes. See docs/imports.md for the figures.

Errors are classified by where they come from: the file (ImportFailed: the job fails), or a
backing service that does not answer when asked (ServiceUnavailable: the job is retried).
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from stage1.core.errors import ServiceUnavailable, service_of
from stage1.core.logging import get_logger
from stage1.core.questdb import STAGING_MARK, QuestDBError, get_questdb, ident, ilp_sender, quote
from stage1.imports.errors import ImportFailed
from stage1.imports.formats import CSV, Source, open_batches
from stage1.imports.limits import Limits
from stage1.imports.normalize import Plan, plan, table_batch
from stage1.imports.rowhash import Hashed, RowHasher
from stage1.timeseries.kinds import SPECS, TIMESTAMP, Kind

log = get_logger("imports")


def _use_jemalloc() -> None:
    """pyarrow's jemalloc pool instead of its default (mimalloc): on 10M-row imports it gave
    back memory sooner (peak RSS 265 vs 290 MB) at no CPU cost (docs/imports.md, Benchmark). The
    environment's ARROW_DEFAULT_MEMORY_POOL, if set, wins."""
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    with contextlib.suppress(NotImplementedError):  # a pyarrow built without jemalloc: its default
        pa.set_memory_pool(pa.jemalloc_memory_pool())


_use_jemalloc()

DEFAULT_BLOCK_SIZE = 512 << 10
DEFAULT_BATCH_ROWS = 60_000
DEFAULT_SENDERS = 2
DEFAULT_FRAME_BYTES = 16 << 20
# ILP/HTTP: the client retries a failed request for this long (safe: tables dedup on upsert keys).
SENDER_OPTIONS = {"request_timeout": 120_000, "retry_timeout": 10_000, "request_min_throughput": 1 << 20}

Progress = Callable[[int, int | None], None]  # (rows committed, total rows or None); may raise to stop


@dataclass
class ImportStats:
    format: str
    rows: int = 0
    batches: int = 0
    first_ts: int | None = None  # microseconds
    last_ts: int | None = None
    seconds: float = 0.0
    columns: list[str] | None = None
    hashed: Hashed | None = None  # the fingerprint's row-hash sums, when a `hasher` was given and could


class _Senders:
    """`n` threads, each with its own ILP/HTTP Sender, fed through a bounded queue."""

    def __init__(self, table: str, n: int) -> None:
        self.table = table
        self.queue: queue.Queue[tuple[Any, int] | None] = queue.Queue(maxsize=n)
        self.error: BaseException | None = None
        self.committed = 0
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, name=f"ilp-{i}", daemon=True) for i in range(n)]
        for t in self._threads:
            t.start()

    def _run(self) -> None:
        sender = None
        try:
            sender = ilp_sender(**SENDER_OPTIONS)
            sender.establish()
            while (item := self.queue.get()) is not None:
                if self.error is not None:
                    continue  # drain after a failure elsewhere
                frame, rows = item
                sender.dataframe(frame, table_name=self.table, at=TIMESTAMP)
                sender.flush()
                with self._lock:
                    self.committed += rows
        except BaseException as exc:  # reported to the producer, which stops
            with self._lock:
                self.error = self.error or exc
            while self.queue.get() is not None:  # keep draining so the producer never blocks
                pass
        finally:
            if sender is not None:
                with contextlib.suppress(Exception):  # closing after an error
                    sender.close(flush=False)

    def put(self, item: tuple[Any, int], heartbeat: Callable[[], None]) -> None:
        while True:
            self.raise_error()
            try:
                self.queue.put(item, timeout=0.5)
                return
            except queue.Full:
                heartbeat()

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error

    def finish(self, heartbeat: Callable[[], None] | None = None) -> None:
        for _ in self._threads:
            self.queue.put(None)
        for t in self._threads:
            while t.is_alive():
                t.join(timeout=0.5)
                if heartbeat is not None and t.is_alive():
                    heartbeat()

    def abort(self) -> None:
        with self._lock:
            self.error = self.error or ImportFailed("aborted")
        self.finish()


def _slices(table: pa.Table, max_bytes: int) -> list[pa.Table]:
    if table.nbytes <= max_bytes or table.num_rows <= 1:
        return [table]
    step = max(1, max_bytes // max(1, table.nbytes // table.num_rows))
    return [table.slice(start, step) for start in range(0, table.num_rows, step)]


def _join(tables: list[pa.Table]) -> pa.Table:
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables).combine_chunks()


def _frame(table: pa.Table, p: Plan) -> pd.DataFrame:
    """Arrow-backed pandas (zero copy; the client's fastest DataFrame path), SYMBOL columns as categoricals."""
    df = table.to_pandas(types_mapper=pd.ArrowDtype, self_destruct=True)
    for name in p.symbols:
        if name in df.columns:
            df[name] = df[name].astype("string[python]").astype("category")
    return df


def import_file(
    source: Source, kind: Kind, table: str, *,
    prepare: Callable[[Plan], None] | None = None,
    progress: Progress | None = None,
    senders: int = DEFAULT_SENDERS,
    block_size: int = DEFAULT_BLOCK_SIZE,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    frame_bytes: int = DEFAULT_FRAME_BYTES,
    limits: Limits | None = None,
    report_every: float = 1.0,
    hasher: RowHasher | None = None,
) -> ImportStats:
    """Stream `source` into the QuestDB table `table`. `prepare(plan)` runs after the columns are
    checked and before any row is sent (create the table there). `progress(rows, total)` is called
    at most every `report_every` seconds; an exception from it stops the import.

    Parsing and sending have different sweet spots: pyarrow's CSV reader holds memory in proportion
    to its block (about 35 × the block), so blocks stay small, while each ILP/HTTP request (one
    QuestDB transaction) should carry many rows; parsed batches are therefore joined into frames of
    at least `batch_rows` rows before they are sent. `hasher` (a first dataset import) is fed every
    batch, in file order, before it is sent (sending destroys the batch's buffers)."""
    ident(table)
    started = time.monotonic()
    limits = Limits(**{**(limits or Limits()).__dict__, "block_bytes": block_size})
    try:
        batches = open_batches(source, hints=column_hints(kind), limits=limits)
    except (ImportFailed, ServiceUnavailable):
        raise
    except Exception as exc:
        raise _classify(exc) from exc
    stats = ImportStats(batches.format)
    try:
        p = plan(kind, batches.schema)
        stats.columns = p.table_columns
        if prepare is not None:
            prepare(p)
        total = batches.total_rows
        pool = _Senders(table, max(1, senders))
        last = time.monotonic()

        def heartbeat(force: bool = False) -> None:
            nonlocal last
            if progress is not None and (force or time.monotonic() - last >= report_every):
                last = time.monotonic()
                progress(pool.committed, total)

        pending: list[pa.Table] = []
        pending_rows = pending_bytes = 0
        try:
            heartbeat(force=True)
            for batch in batches.batches:
                if batch.num_rows == 0:
                    continue
                rows = table_batch(p, batch, stats.rows)
                if hasher is not None:
                    hasher.add(rows)
                lo, hi = pc.min_max(rows.column(TIMESTAMP)).values()
                lo, hi = lo.cast(pa.int64()).as_py(), hi.cast(pa.int64()).as_py()
                stats.first_ts = lo if stats.first_ts is None else min(stats.first_ts, lo)
                stats.last_ts = hi if stats.last_ts is None else max(stats.last_ts, hi)
                if stats.batches == 0 and total is None and batches.format == CSV and source.size > block_size:
                    total = int(batch.num_rows * source.size / block_size)  # an estimate, corrected at the end
                stats.rows += batch.num_rows
                stats.batches += 1
                del batch
                # A batch larger than a frame (an Arrow writer's 60 MiB batch) is sent in slices:
                # its ILP text would pass the client's buffer cap (100 MiB) and one request's budget.
                for piece in _slices(rows, frame_bytes):
                    pending.append(piece)
                    pending_rows += piece.num_rows
                    pending_bytes += piece.nbytes
                    if pending_rows >= batch_rows or pending_bytes >= frame_bytes:
                        pool.put((_frame(_join(pending), p), pending_rows), heartbeat)
                        pending, pending_rows, pending_bytes = [], 0, 0
                del rows
                heartbeat()
            if pending:
                pool.put((_frame(_join(pending), p), pending_rows), heartbeat)
                pending = []
            if stats.rows == 0:
                raise ImportFailed("the file has no data rows (a header at most)", {"rows": 0})
            pool.finish(heartbeat)
            pool.raise_error()
        except BaseException:
            pool.abort()
            raise
    except (ImportFailed, ServiceUnavailable):
        raise
    except Exception as exc:
        raise _classify(exc) from exc
    finally:
        batches.close()
    stats.seconds = time.monotonic() - started
    stats.hashed = hasher.result() if hasher is not None else None
    if progress is not None:
        progress(stats.rows, stats.rows)
    return stats


_ARROW_TYPES = {"DOUBLE": pa.float64(), "LONG": pa.int64(), "INT": pa.int64(), "SYMBOL": pa.string()}


def column_hints(kind: Kind) -> dict[str, pa.DataType]:
    """The kind's declared columns: a CSV value that does not parse as the column's type fails with
    pyarrow's message naming the column and row, before anything is sent."""
    return {name: _ARROW_TYPES[qtype] for name, qtype in SPECS[kind].columns if qtype in _ARROW_TYPES}


def _classify(exc: Exception) -> Exception:
    """Where did it fail? QuestDB's own rejection of the rows is the file's fault (ImportFailed, with
    QuestDB's text). Any other failure of the ILP client is put to QuestDB: if it does not answer,
    it is an outage (ServiceUnavailable: the job is retried); if it answers, the request itself was
    the problem (ImportFailed). Arrow errors raised while converting values are the file's fault.
    A Postgres outage (progress reports) stays as it is. Anything else is a bug and stays as it is."""
    if service_of(exc) == "postgres":
        return exc
    text = str(exc)
    module = type(exc).__module__.split(".")[0]
    if module == "questdb":
        code = getattr(getattr(exc, "code", None), "name", "")
        if code in _DATA_CODES or "error in line" in text.lower() or re.search(r"\b4\d\d\b", text):
            return ImportFailed(f"QuestDB rejected the rows: {text[:500]}", {"questdb": text[:1000]})
        if not questdb_answers():
            return ServiceUnavailable("questdb", text[:300])
        return ImportFailed(f"QuestDB did not store the rows: {text[:500]}", {"questdb": text[:1000]})
    if isinstance(exc, pa.ArrowException):
        return ImportFailed(f"the file's values could not be converted: {text[:500]}", {"reason": text[:500]})
    return exc


# The ILP client's codes for a value it could not encode (the file's fault, whatever QuestDB's state).
_DATA_CODES = {"InvalidName", "InvalidTimestamp", "InvalidUtf8", "BadDataFrame", "ArrayError"}


def questdb_answers() -> bool:
    try:
        get_questdb().exec("select 1", timeout=3.0)
        return True
    except Exception:
        return False


# ---------------------------------------------------------------- after the rows are sent
def wait_applied(table: str, *, timeout: float = 300.0, heartbeat: Callable[[], None] | None = None) -> bool:
    """Wait until QuestDB has applied the table's WAL (writerTxn caught up with sequencerTxn), so
    counts and bounds read afterwards include every committed row. False on timeout."""
    name = ident(table)
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        rows = get_questdb().exec(
            f"select suspended, writerTxn, sequencerTxn, errorMessage from wal_tables() where name = '{name}'"  # noqa: S608
        ).dataset
        if not rows:
            return True  # not a WAL table: visible on commit
        suspended, writer, sequencer, message = rows[0]
        if suspended:
            raise ImportFailed(f"QuestDB suspended the table's WAL: {message}", {"questdb": message})
        if writer >= sequencer:
            return True
        if time.monotonic() > deadline:
            return False
        if heartbeat is not None:
            heartbeat()
        time.sleep(delay)
        delay = min(delay * 2, 0.1)  # one cheap query; a longer step only delays the job's end


@dataclass(frozen=True)
class TableStats:
    rows: int
    first_ts: int | None  # microseconds
    last_ts: int | None


def table_stats(table: str, *, timeout: float | None = None) -> TableStats:
    q = get_questdb().exec(
        f'select count() n, min({TIMESTAMP}) lo, max({TIMESTAMP}) hi from "{ident(table)}"', timeout=timeout  # noqa: S608
    )
    n, lo, hi = q.dataset[0] if q.dataset else (0, None, None)
    return TableStats(int(n or 0), _micros(lo), _micros(hi))


def _micros(value: Any) -> int | None:
    if value is None:
        return None
    from stage1.timeseries.timestamps import to_micros

    return to_micros(value)


# ---------------------------------------------------------------- staging → target
def staging_name(target: str, job_id: str) -> str:
    """`<target>__s<first 8 hex of the job id>`, the target shortened so the name fits 63 characters
    (`stage1.core.questdb.is_staging` recognises every such name: clients can neither give nor read one)."""
    suffix = STAGING_MARK + job_id.replace("-", "")[:8]
    return ident(target[: 63 - len(suffix)] + suffix)


def _columns(table: str) -> dict[str, str]:
    rows = get_questdb().exec(f"select \"column\", type from table_columns('{ident(table)}')").dataset  # noqa: S608
    return {str(name): str(qtype) for name, qtype in rows}


def copy_into(staging: str, target: str, *, timeout: float, create: Callable[[], None] | None = None) -> str:
    """Every row of `staging` into `target`, all or nothing: readers of the target see every row of
    the import or none of it, and DEDUP UPSERT KEYS keeps one copy of each row. Returns how.

    `create` (makes the target, IF NOT EXISTS) given and the target does not exist yet: the staging
    table BECOMES the target (`RENAME TABLE`: a metadata change — no second copy of the rows for
    QuestDB to write and apply; the staging table was made by the same `CREATE` as the target, so
    it has its partitioning, WAL and dedup keys). QuestDB refuses the rename if the name was taken
    meanwhile (a concurrent first import renamed or created it first); then, as for every existing
    target, the rows are copied into it in ONE `INSERT ... SELECT` (one WAL transaction), so
    concurrent imports of one table still end with the exact union. Columns the file brought that
    the target lacks are added first (same types)."""
    if create is not None:
        if not get_questdb().table_exists(target):
            try:
                get_questdb().exec(f"RENAME TABLE {quote(staging)} TO {quote(target)}", timeout=timeout)
                return "renamed"
            except QuestDBError as exc:
                # The race: the name is in use (QuestDB says so while the winner's rename is still
                # under way, before `tables()` lists it). Anything else: the staging table itself
                # could not be renamed.
                if RENAME_TAKEN not in exc.questdb_message and not get_questdb().table_exists(target):
                    raise
                _wait_listed(target, timeout=min(timeout, 10.0))
        create()
    _copy(staging, target, timeout=timeout)
    return "copied"


RENAME_TAKEN = "new name is already in use"  # QuestDB 9.3.4's refusal of a RENAME onto a taken name


def _wait_listed(table: str, *, timeout: float) -> None:
    """Until `table` is listed (another import's rename finished), at most `timeout` seconds; then
    the caller's CREATE IF NOT EXISTS settles it either way."""
    deadline = time.monotonic() + timeout
    while not get_questdb().table_exists(table) and time.monotonic() < deadline:
        time.sleep(0.02)


def _copy(staging: str, target: str, *, timeout: float) -> None:
    source, existing = _columns(staging), _columns(target)
    try:
        for name, qtype in source.items():
            if name not in existing:
                get_questdb().exec(
                    f"ALTER TABLE {quote(target)} ADD COLUMN IF NOT EXISTS {quote(name, 'column')} {qtype}")
        names = ", ".join(quote(name, "column") for name in source)
        get_questdb().exec(f"INSERT INTO {quote(target)} ({names}) SELECT {names} FROM {quote(staging)}",  # noqa: S608
                           timeout=timeout)
    except QuestDBError as exc:  # e.g. a column the file has as text where the table has numbers
        differ = {n: (t, existing[n]) for n, t in source.items() if n in existing and existing[n] != t}
        raise ImportFailed(f"the rows do not fit the table {target}: {exc.questdb_message[:300]}",
                           {"questdb": exc.questdb_message[:1000], "column_types": differ}) from exc
