"""Datasets: a Postgres row (`stage1_datasets`) naming two QuestDB tables (OHLCV and indicators).

SQL uses bind parameters only; QuestDB identifiers pass `ident()`. Row counts and bounds stored in
Postgres are what the client (or `record_questdb`) said; `questdb_state` is read live.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

import msgspec
import psycopg
from psycopg import Connection, sql

from stage1.core import db
from stage1.core.budget import Budget
from stage1.core.csvtext import CsvBody
from stage1.core.db import jsonb
from stage1.core.errors import BadRequest, Conflict, NotFound
from stage1.core.logging import get_logger
from stage1.core.paging import like_pattern, next_offset, page_limit, sort_orders
from stage1.core.questdb import IDENT_MAX
from stage1.core.settings import get_settings
from stage1.core.times import utc
from stage1.core.where import Where
from stage1.datasets import versions
from stage1.datasets.lookup import Lock, find
from stage1.datasets.schemas import (
    Dataset,
    DatasetDeleted,
    DatasetIn,
    DatasetLinks,
    DatasetList,
    DatasetSort,
    DownsampledRows,
    QuestDBState,
    Rows,
)
from stage1.timeseries import cleanup, downsample, reads
from stage1.timeseries import ownership as own
from stage1.timeseries.client_times import client_time
from stage1.timeseries.wal import wait_applied
from stage1_wire.dataset_versions import DatasetVersionList

log = get_logger("datasets")

SORTS = sort_orders("", ("created_at", "updated_at", "dataset_slug", "symbol", "granularity"))
_CATALOG_COLUMNS = (
    "dataset_id, dataset_slug, symbol, granularity, ohlcv_measurement, indicator_measurement, ohlcv_rows, "
    "indicator_rows, ohlcv_first_ts, ohlcv_last_ts, indicator_first_ts, indicator_last_ts, metadata, source, "
    "created_at, updated_at, related_runs, related_simulations, "
    # the view's d.* was fixed when it was created (0001): the version counter (0016) is read beside it
    "(select v.version from stage1_datasets v where v.dataset_id = dataset_catalog.dataset_id) as version"
)
DEFAULT_SUFFIX = {"ohlcv": "_ohlcv", "indicator": "_ind"}
ROLES = {"ohlcv": "ohlcv", "indicator": "indicators"}  # stage1_questdb_tables.role


# ----------------------------------------------------------------------------------------- reads
def _links(dataset_id: uuid.UUID) -> DatasetLinks:
    base = f"/api/datasets/{dataset_id}"
    return DatasetLinks(self=base, runs=f"{base}/runs", simulations=f"/api/simulations?dataset_id={dataset_id}",
                        ohlcv=f"{base}/ohlcv", indicators=f"{base}/indicators")


def _dataset(row: dict[str, Any], states: dict[str, reads.TableState] | None) -> Dataset:
    state = None
    if states is not None:
        state = QuestDBState(ohlcv=states[row["ohlcv_measurement"]], indicator=states[row["indicator_measurement"]])
    return Dataset(
        dataset_id=row["dataset_id"], dataset_slug=row["dataset_slug"], symbol=row["symbol"],
        granularity=row["granularity"], ohlcv_measurement=row["ohlcv_measurement"],
        indicator_measurement=row["indicator_measurement"], ohlcv_rows=row["ohlcv_rows"],
        indicator_rows=row["indicator_rows"], ohlcv_first_ts=row["ohlcv_first_ts"],
        ohlcv_last_ts=row["ohlcv_last_ts"], indicator_first_ts=row["indicator_first_ts"],
        indicator_last_ts=row["indicator_last_ts"], metadata=row["metadata"], source=row["source"],
        created_at=utc(row["created_at"]), updated_at=utc(row["updated_at"]),  # type: ignore[arg-type]
        related_runs=row["related_runs"], related_simulations=row["related_simulations"],
        questdb_state=state, links=_links(row["dataset_id"]),
        ohlcv_row_count=row["ohlcv_rows"], indicator_row_count=row["indicator_rows"],
        version=row["version"],
    )


def _states(rows: list[dict[str, Any]]) -> dict[str, reads.TableState]:
    names = [r[k] for r in rows for k in ("ohlcv_measurement", "indicator_measurement")]
    return reads.table_states(names)


def list_datasets(*, symbol: str | None, granularity: str | None, search: str | None, limit: int, offset: int,
                  sort: DatasetSort) -> DatasetList:
    where = _filters(symbol, granularity, search)
    clause = sql.SQL(where.sql())
    order = sql.SQL(SORTS[sort] + ", dataset_id")
    with db.connection() as conn:
        total = conn.execute(sql.SQL("select count(*) as n from stage1_datasets") + clause, where.params).fetchone()
        rows, _ = db.fetch_within(
            conn, sql.SQL(f"select {_CATALOG_COLUMNS} from dataset_catalog") + clause  # noqa: S608 - constant
            + sql.SQL(" order by ") + order + sql.SQL(" limit %(limit)s offset %(offset)s"),
            {**where.params, "limit": limit, "offset": offset}, get_settings().queries.page_max_bytes)
    states = _states(rows)
    n = total["n"] if total else 0
    return DatasetList(datasets=[_dataset(r, states) for r in rows], total=n, limit=limit, offset=offset,
                       next_offset=next_offset(offset, len(rows), n))


def _filters(symbol: str | None, granularity: str | None, search: str | None) -> Where:
    where = Where()
    if symbol:
        where.add("lower(symbol) = lower(%(symbol)s)", symbol=symbol)
    if granularity:
        where.add("lower(granularity) = lower(%(granularity)s)", granularity=granularity)
    if search:
        where.add("(dataset_slug ilike %(pattern)s or symbol ilike %(pattern)s or ohlcv_measurement ilike "
                  "%(pattern)s or indicator_measurement ilike %(pattern)s or source ilike %(pattern)s)",
                  pattern=like_pattern(search))
    return where


def find_row(conn: Connection[Any], ref: str, *, lock: Lock = "") -> dict[str, Any]:
    """The `stage1_datasets` row of a UUID or slug reference, or 404. `lock`: "" / "share" / "update"."""
    row = find(conn, ref, lock=lock)
    if row is None:
        raise NotFound("dataset not found", {"dataset_id": ref})
    return row


def get_dataset(ref: str) -> Dataset:
    with db.connection() as conn:
        row = find(conn, ref, columns=_CATALOG_COLUMNS, source="dataset_catalog")
        if row is None:
            raise NotFound("dataset not found", {"dataset_id": ref})
        history, _ = versions.list_versions(conn, row["dataset_id"], limit=versions.DETAIL_VERSIONS, offset=0)
    return msgspec.structs.replace(_dataset(row, _states([row])), versions=history)


def dataset_versions(ref: str, *, limit: int, offset: int) -> DatasetVersionList:
    """`GET /api/datasets/{id}/versions`: the dataset's versions, newest first."""
    with db.connection() as conn:
        row = find_row(conn, ref)
    return versions.page(row["dataset_id"], row["version"], limit=limit, offset=offset)


def _default_measurement(slug: str, which: str) -> str:
    name = slug + DEFAULT_SUFFIX[which]
    if len(name) > IDENT_MAX:
        field = f"{which}_measurement"
        raise BadRequest(f"dataset_slug is too long for the default {field}; give {field}",
                         {"field": field, "default": name})
    return name


def _questdb_stats(names: dict[str, str], budget: Budget) -> dict[str, Any]:
    """Row counts and bounds read from QuestDB (after its pending WAL writes are applied), all
    within the request's QuestDB budget (two 15 s waits used to outlast the Lambda)."""
    states = reads.table_states(list(names.values()), timeout=budget.left(5.0), tolerant=False)
    for name in set(names.values()):
        if states[name].exists:
            wait_applied(name, timeout=budget.left())
    states = reads.table_states(list(names.values()), timeout=budget.left(5.0), tolerant=False)
    out: dict[str, Any] = {}
    for which, name in names.items():
        state = states[name]
        out[f"{which}_rows"] = state.row_count or 0
        out[f"{which}_first_ts"] = state.first_ts
        out[f"{which}_last_ts"] = state.last_ts
    return out


_UPSERT = """
insert into stage1_datasets as d (
    dataset_id, dataset_slug, symbol, granularity, ohlcv_measurement, indicator_measurement,
    ohlcv_rows, indicator_rows, ohlcv_first_ts, ohlcv_last_ts, indicator_first_ts, indicator_last_ts,
    metadata, source, created_at, updated_at)
values (
    coalesce(%(dataset_id)s, gen_random_uuid()), %(dataset_slug)s, coalesce(%(symbol)s, ''),
    coalesce(%(granularity)s, ''), %(ohlcv_measurement)s, %(indicator_measurement)s,
    coalesce(%(ohlcv_rows)s, 0), coalesce(%(indicator_rows)s, 0), %(ohlcv_first_ts)s, %(ohlcv_last_ts)s,
    %(indicator_first_ts)s, %(indicator_last_ts)s, coalesce(%(metadata)s, '{}'::jsonb), coalesce(%(source)s, ''),
    coalesce(%(created_at)s, now()), now())
on conflict (dataset_slug) do update set
    symbol = coalesce(%(symbol)s, d.symbol),
    granularity = coalesce(%(granularity)s, d.granularity),
    ohlcv_measurement = %(ohlcv_measurement)s,
    indicator_measurement = %(indicator_measurement)s,
    ohlcv_rows = coalesce(%(ohlcv_rows)s, d.ohlcv_rows),
    indicator_rows = coalesce(%(indicator_rows)s, d.indicator_rows),
    ohlcv_first_ts = case when %(exact)s then %(ohlcv_first_ts)s
                          else coalesce(%(ohlcv_first_ts)s, d.ohlcv_first_ts) end,
    ohlcv_last_ts = case when %(exact)s then %(ohlcv_last_ts)s
                         else coalesce(%(ohlcv_last_ts)s, d.ohlcv_last_ts) end,
    indicator_first_ts = case when %(exact)s then %(indicator_first_ts)s
                              else coalesce(%(indicator_first_ts)s, d.indicator_first_ts) end,
    indicator_last_ts = case when %(exact)s then %(indicator_last_ts)s
                             else coalesce(%(indicator_last_ts)s, d.indicator_last_ts) end,
    metadata = coalesce(%(metadata)s, d.metadata),
    source = coalesce(%(source)s, d.source),
    updated_at = now()
returning dataset_id, (xmax = 0) as inserted
"""


def upsert_dataset(body: DatasetIn, *, record_questdb: bool = False) -> tuple[Dataset, bool]:
    """Insert or update by slug. Returns the stored dataset and whether it was created."""
    record = record_questdb or body.record_questdb
    with db.connection() as conn:
        existing = find(conn, body.dataset_slug, by="slug",
                        columns="dataset_id, ohlcv_measurement, indicator_measurement")
    if existing and body.dataset_id and existing["dataset_id"] != body.dataset_id:
        raise Conflict("dataset_slug belongs to another dataset_id",
                       {"dataset_slug": body.dataset_slug, "dataset_id": str(existing["dataset_id"])})
    names = {
        which: getattr(body, f"{which}_measurement")
        or (existing[f"{which}_measurement"] if existing else _default_measurement(body.dataset_slug, which))
        for which in ("ohlcv", "indicator")
    }
    params: dict[str, Any] = {
        "dataset_id": body.dataset_id, "dataset_slug": body.dataset_slug, "symbol": body.symbol,
        "granularity": body.granularity, "ohlcv_measurement": names["ohlcv"],
        "indicator_measurement": names["indicator"], "ohlcv_rows": body.ohlcv_rows,
        "indicator_rows": body.indicator_rows, "ohlcv_first_ts": body.ohlcv_first_ts,
        "ohlcv_last_ts": body.ohlcv_last_ts, "indicator_first_ts": body.indicator_first_ts,
        "indicator_last_ts": body.indicator_last_ts,
        "metadata": None if body.metadata is None else jsonb(body.metadata), "source": body.source,
        "created_at": client_time(body.created_at, "created_at"), "exact": record,
    }
    for which, name in names.items():
        own.check_name(name, f"{which}_measurement")
    measured = None
    if record:
        budget = Budget(get_settings().questdb.questdb_request_budget_seconds)  # stats and fingerprints together
        params.update(_questdb_stats(names, budget))  # before any write: QuestDB down means nothing changes
        measured = versions.measure(names, budget=budget)
    try:
        with db.connection() as conn, conn.transaction():
            result = conn.execute(_UPSERT, params).fetchone()
            assert result is not None
            _claim_tables(conn, result["dataset_id"], names, existing)
            if measured is not None:  # a new version if the content changed (datasets.versions)
                versions.record(conn, result["dataset_id"], "record", measured)
    except psycopg.errors.UniqueViolation as exc:
        raise Conflict("dataset_id already belongs to another dataset",
                       {"dataset_id": str(body.dataset_id), "constraint": exc.diag.constraint_name}) from None
    return get_dataset(str(result["dataset_id"])), bool(result["inserted"])


def _claim_tables(conn: Connection[Any], dataset_id: uuid.UUID, names: dict[str, str],
                  existing: dict[str, Any] | None) -> None:
    """The dataset owns the tables it names (409 naming the owner if another record has one; a
    table the client wrote itself is adopted: the dataset is what it was written for) and lets go of
    names it no longer uses (they stay in QuestDB, unregistered)."""
    owner = own.Owner("dataset", dataset_id)
    for which, name in names.items():
        own.adopt_orphan(conn, name, owner)  # a table a deleted dataset could not drop yet
        own.claim(conn, name, owner, ROLES[which], exists=False)
    if existing is not None:
        stale = [existing[f"{w}_measurement"] for w in names if existing[f"{w}_measurement"] not in names.values()]
        own.release(conn, owner, stale)


# ---------------------------------------------------------------------------------------- delete
def delete_dataset(ref: str, *, cascade: bool, drop_questdb: bool) -> DatasetDeleted:
    """Delete the dataset (409 while runs reference it, unless `cascade`). Postgres first, in one
    transaction; then the QuestDB tables that nothing references any more, best effort."""
    with db.connection() as conn, conn.transaction():
        row = find_row(conn, ref, lock="update")
        dataset_id = row["dataset_id"]
        runs = conn.execute("select prediction_measurement from walkforward_runs where dataset_id = %s",
                            (dataset_id,)).fetchall()
        if runs and not cascade:
            raise Conflict("dataset has runs; delete them first or pass cascade=true",
                           {"dataset_id": str(dataset_id), "related_runs": len(runs)})
        sims = conn.execute("delete from simulation_runs where dataset_id = %s or run_id in "
                            "(select run_id from walkforward_runs where dataset_id = %s)",
                            (dataset_id, dataset_id)).rowcount
        deleted = conn.execute("delete from walkforward_runs where dataset_id = %s returning run_id",
                               (dataset_id,)).fetchall()
        try:
            conn.execute("delete from stage1_datasets where dataset_id = %s", (dataset_id,))
        except psycopg.errors.ForeignKeyViolation:  # a run was added concurrently
            raise Conflict("dataset has runs", {"dataset_id": str(dataset_id)}) from None
        # Only tables a record owns (created or adopted for it) and no other record names are dropped.
        tables = [t for r in deleted for t in own.release_registrations(conn, own.Owner("run", r["run_id"]))]
        dataset_tables = own.release_registrations(conn, own.Owner("dataset", dataset_id))
        if drop_questdb:
            tables += dataset_tables
    dropped, left = cleanup.drop_released(tables, Budget(get_settings().questdb.questdb_request_budget_seconds))
    return DatasetDeleted(dataset_id=dataset_id, dataset_slug=row["dataset_slug"], deleted=True,
                          runs_deleted=len(runs), simulations_deleted=sims, questdb_tables_dropped=dropped,
                          questdb_tables_left=left)


# ------------------------------------------------------------------------------------- row reads
def read_rows(ref: str, which: Literal["ohlcv", "indicator"], *, from_s: int | None, to_s: int | None,
              columns: list[str] | None, fmt: Literal["json", "csv"], limit: int | None, offset: int,
              unit: reads.TimestampUnit, max_points: int | None = None) -> Rows | CsvBody:
    """Rows of the dataset's OHLCV or indicator table. The one place these reads happen (a later
    size-threshold → export-job path hooks in here)."""
    if from_s is not None and to_s is not None and from_s > to_s:
        raise BadRequest("from is after to", {"from": from_s, "to": to_s})
    with db.connection() as conn:
        row = find_row(conn, ref)
    table = row[f"{which}_measurement"]
    available = reads.table_columns(table)
    ts = reads.designated(available, table)
    cols, unknown = reads.resolve_columns(available, columns, exclude=(ts.name.lower(),))
    if unknown:
        raise BadRequest("unknown columns", {"unknown_columns": unknown, "measurement": table})
    query = reads.RowQuery(table=table, ts_column=ts.name, ts_type=ts.type, columns=cols,
                           from_s=from_s, to_s=to_s, unit=unit)
    if max_points is not None:  # chart resolution: SAMPLE BY buckets (stage1.timeseries.downsample)
        chosen = [c for c in available if c.name in cols]
        points = downsample.read(query, downsample.aggregates(chosen, ohlcv=which == "ohlcv"), max_points,
                                 fmt=fmt, limit=limit, offset=offset, filename=f"{table}.csv",
                                 rollup=which == "ohlcv")
        if isinstance(points, CsvBody):
            return points
        return DownsampledRows(measurement=table, columns=query.output_columns, rows=points.rows,
                               total=points.total, limit=points.limit, offset=offset,
                               next_offset=next_offset(offset, len(points.rows), points.total),
                               bucket_seconds=points.bucket_seconds, max_points=max_points)
    if fmt == "csv":
        return CsvBody(f"{table}.csv", reads.open_csv(query, limit, offset))
    size = page_limit(limit or 1000, len(cols) + 1)
    data, total = reads.read_page(query, size, offset)
    return Rows(measurement=table, columns=query.output_columns, rows=data, total=total, limit=size,
                offset=offset, next_offset=next_offset(offset, len(data), total))
