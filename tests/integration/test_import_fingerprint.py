"""The importer's fingerprint of a first dataset import (stage1.imports.rowhash) against QuestDB's own
computation (stage1.timeseries.fingerprint) on the table the import left: bit for bit, on real files
(CSV with epoch seconds, ISO, Parquet, an indicators file with more columns than one hash group);
and the cases where the importer must leave it to QuestDB.

The rows go through the real importer (`stage1.imports.service.run_job`: staging table, RENAME,
the dataset's version) on the real stack; the file is put under `inline/`, which sends no storage
event, so the job runs in this process's code whatever code the gateway that receives MinIO's
events runs. The dataset and its versions are made and read through the gateway.

On the old code a job result has no `fingerprint_source`: every test here fails there."""

from __future__ import annotations

import io
import math
import uuid
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from imports_support import T0

from stage1.core import db, storage
from stage1.core.questdb import get_questdb
from stage1.core.settings import get_settings
from stage1.imports.core import copy_into, import_file, wait_applied
from stage1.imports.formats import Source
from stage1.imports.rowhash import RowHasher, staging_txn, verified
from stage1.imports.service import JOB_TYPE, run_job
from stage1.jobs import service as jobs
from stage1.timeseries.fingerprint import fingerprint
from stage1.timeseries.kinds import SPECS, Kind, drop_table, ensure_table

ROWS = 30_000  # a CSV of ~2 MB: several parse blocks and ILP frames, so batch boundaries are crossed


@pytest.fixture
def ds(client, unique):
    slug = f"zz_ifp_{unique}"
    r = client.post("/api/datasets", json={"dataset_slug": slug, "symbol": "BTC", "granularity": "1m"})
    assert r.status_code == 201, r.text
    yield r.json()
    client.delete(f"/api/datasets/{slug}?cascade=true&drop_questdb=true")


def _values(n: int, seed: int) -> np.ndarray:
    """Doubles of every kind the fast path takes: negative, tiny (down to subnormal), large but
    < 2^52 with fractions, integers, ±0."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1000, n)
    x[::7] = rng.uniform(-(2.0 ** 51), 2.0 ** 51, len(x[::7])) + rng.uniform(-1, 1, len(x[::7]))
    x[1::11] = rng.uniform(-1e-12, 1e-12, len(x[1::11]))
    x[2::13] = np.round(x[2::13])
    x[3] = 5e-324
    x[4] = -0.0
    x[5] = 2.0 ** 52 - 0.5
    x[6] = -(2.0 ** 52) + 1.5
    return x


def _ohlcv(n: int, ts: list[int] | None = None) -> pa.Table:
    ts = ts if ts is not None else [T0 + 60 * k for k in range(n)]
    return pa.table({"timestamp_unix": pa.array(ts, pa.int64()),
                     **{c: _values(n, i) for i, c in enumerate(("open", "high", "low", "close", "volume"))}})


def _csv(table: pa.Table, iso: bool = False) -> bytes:
    cols = table.to_pydict()
    names = list(cols)
    if iso:
        cols["timestamp"] = [datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for t in cols.pop(names[0])]
        names = ["timestamp", *names[1:]]
    lines = [",".join(names)]
    for row in zip(*(cols[n] for n in names), strict=True):
        lines.append(",".join(v if isinstance(v, str) else repr(v) for v in row))
    return ("\n".join(lines) + "\n").encode()


def _parquet(table: pa.Table, row_group: int | None = None) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=row_group or max(1, table.num_rows // 3))
    return sink.getvalue()


def _import(ds: dict, kind: str, data: bytes, ext: str) -> dict:
    """The file through the real importer into the dataset's table; the job's result."""
    settings = get_settings()
    key = f"inline/{uuid.uuid4()}/data.{ext}"
    storage.get_s3().put_object(Bucket=settings.store.bucket, Key=key, Body=data)
    table = ds["ohlcv_measurement"] if kind == "ohlcv" else ds["indicator_measurement"]
    payload = {"bucket": settings.store.bucket, "key": key, "kind": kind, "measurement": table,
               "format": ext, "dataset_id": ds["dataset_id"], "granularity": "1m", "size": len(data), "ready": True}
    try:
        with db.connection() as conn:
            job = jobs.create_job(conn, JOB_TYPE, payload, created_by=None)
        run_job(job.job_id)
        done = jobs.find_job(job.job_id)
    finally:
        storage.get_s3().delete_object(Bucket=settings.store.bucket, Key=key)
    assert done is not None and done.status == "COMPLETED", done
    return done.result


def _stored(client, ds: dict, kind: str) -> str:
    detail = client.get(f"/api/datasets/{ds['dataset_slug']}").json()
    return detail["versions"][0]["ohlcv" if kind == "ohlcv" else "indicator"]["fingerprint"]


def _check(client, ds: dict, kind: str, data: bytes, ext: str, source: str) -> dict:
    result = _import(ds, kind, data, ext)
    assert result["fingerprint_source"] == source, result
    table = ds["ohlcv_measurement"] if kind == "ohlcv" else ds["indicator_measurement"]
    questdb = fingerprint(table)
    assert _stored(client, ds, kind) == questdb.digest and questdb.digest is not None
    return result


def _indicators(n: int) -> pa.Table:
    """11 value columns (two hash groups), negative ones included; the integer columns are stored as
    DOUBLE (CSV value columns are read as float64), so they stay below 2^52."""
    cols: dict[str, pa.Array] = {"timestamp_unix": pa.array([T0 + 60 * k for k in range(n)], pa.int64())}
    for i in range(9):
        cols[f"ind_{i}"] = pa.array(_values(n, 100 + i))
    rng = np.random.default_rng(7)
    cols["count_a"] = pa.array(rng.integers(-(2 ** 51), 2 ** 51, n), pa.int64())
    cols["count_b"] = pa.array(rng.integers(-5, 5, n), pa.int64())
    return pa.table(cols)


@pytest.mark.parametrize("shape", ["epoch_csv", "iso_csv", "parquet", "parquet_reordered_extra_long"])
def test_importer_digest_equals_questdb_on_ohlcv(client, ds, shape):
    t = _ohlcv(ROWS)
    if shape == "epoch_csv":
        _check(client, ds, "ohlcv", _csv(t), "csv", "importer")
    elif shape == "iso_csv":
        _check(client, ds, "ohlcv", _csv(t, iso=True), "csv", "importer")
    elif shape == "parquet":
        _check(client, ds, "ohlcv", _parquet(t), "parquet", "importer")
    else:
        # Columns in another order than the table's (declared ones come first there) and an extra
        # LONG column the import adds.
        extra = t.select(["close", "timestamp_unix", "volume", "open", "low", "high"]).append_column(
            "trades", pa.array(range(-ROWS // 2, ROWS - ROWS // 2), pa.int64()))
        _check(client, ds, "ohlcv", _parquet(extra), "parquet", "importer")


def test_importer_digest_equals_questdb_on_indicators(client, ds):
    t = _indicators(ROWS)
    _check(client, ds, "indicators", _csv(t), "csv", "importer")
    assert fingerprint(ds["indicator_measurement"]).rows == ROWS


def _swapped(ts: list[int], a: int, b: int) -> list[int]:
    ts = list(ts)
    ts[a], ts[b] = ts[b], ts[a]
    return ts


@pytest.mark.parametrize("case", ["unsorted", "duplicate", "duplicate_across_batches", "nan", "too_large"])
def test_questdb_computes_it_when_the_importer_cannot_prove_it(client, ds, case):
    n = 3000
    ts = [T0 + 60 * k for k in range(n)]
    if case == "unsorted":
        data, ext = _csv(_ohlcv(n, _swapped(ts, 10, 11))), "csv"
    elif case == "duplicate":
        ts[500] = ts[499]
        data, ext = _csv(_ohlcv(n, ts)), "csv"
    elif case == "duplicate_across_batches":
        ts[1000] = ts[999]  # row groups of 1000 rows: the first row of the second one repeats the last one
        data, ext = _parquet(_ohlcv(n, ts), row_group=1000), "parquet"
    else:
        t = _ohlcv(n)
        close = t.column("close").to_numpy().copy()
        close[1234] = math.nan if case == "nan" else 2.0 ** 52
        data, ext = _parquet(t.set_column(4, "close", pa.array(close))), "parquet"
    _check(client, ds, "ohlcv", data, ext, "questdb")


def test_reimport_into_an_existing_table_is_left_to_questdb_and_keeps_the_digest(client, ds):
    data = _csv(_ohlcv(5000))
    first = _check(client, ds, "ohlcv", data, "csv", "importer")
    digest = _stored(client, ds, "ohlcv")
    again = _check(client, ds, "ohlcv", data, "csv", "questdb")
    assert again["dataset"]["version"] == first["dataset"]["version"] and again["dataset"]["version_created"] is False
    assert _stored(client, ds, "ohlcv") == digest


def test_a_write_after_the_rename_leaves_it_to_questdb():
    """Another import's INSERT into the renamed target (between the rename and the version) makes the
    importer's sums stale: `verified` refuses them, whatever the sums say."""
    data = _csv(_ohlcv(2000))
    source = Source(lambda: pa.BufferReader(data), len(data), lambda: pa.BufferReader(data))
    staging, target = f"zz_ifp_s_{uuid.uuid4().hex[:8]}", f"zz_ifp_t_{uuid.uuid4().hex[:8]}"
    try:
        hasher = RowHasher(list(SPECS[Kind.OHLCV].columns))
        stats = import_file(source, Kind.OHLCV, staging, prepare=lambda _p: ensure_table(Kind.OHLCV, staging, "1m"),
                            hasher=hasher)
        wait_applied(staging)
        txn = staging_txn(staging)
        how = copy_into(staging, target, timeout=60, create=lambda: ensure_table(Kind.OHLCV, target, "1m"))
        assert how == "renamed"
        wait_applied(target)
        assert stats.hashed is not None
        assert verified(target, stats.hashed, txn) == fingerprint(target)  # untouched: the scan's digest
        get_questdb().exec(f'insert into "{target}" (timestamp, open, high, low, close, volume) '  # noqa: S608
                           "values (cast(1 as timestamp), 1.0, 1.0, 1.0, 1.0, 1.0)")
        wait_applied(target)
        assert verified(target, stats.hashed, txn) == "the table changed after the rename"
    finally:
        drop_table(staging)
        drop_table(target)
