"""Helpers of the upload/import tests: files made here, uploads done as a client would (plain httpx
to the presigned URLs), jobs polled through the API, rows checked in QuestDB."""

from __future__ import annotations

import gzip
import io
import time

import httpx
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from stage1.core.questdb import get_questdb

T0 = 1_700_000_000  # unix seconds of the first bar


def ohlcv_table(n: int, start: int = T0, step: int = 60) -> pa.Table:
    i = pa.array(range(n), pa.int64())
    ts = pa.array([start + step * k for k in range(n)], pa.int64())
    base = pa.array([100.0 + (k % 1000) / 10 for k in range(n)], pa.float64())
    return pa.table({"timestamp_unix": ts, "open": base, "high": pa.array([v + 1 for v in base.to_pylist()]),
                     "low": pa.array([v - 1 for v in base.to_pylist()]),
                     "close": pa.array([v + 0.5 for v in base.to_pylist()]), "volume": i.cast(pa.float64())})


def ohlcv_csv(n: int, start: int = T0, step: int = 60) -> bytes:
    lines = ["timestamp_unix,open,high,low,close,volume"]
    for k in range(n):
        o = 100.0 + (k % 1000) / 10
        lines.append(f"{start + step * k},{o},{o + 1},{o - 1},{o + 0.5},{float(k)}")
    return ("\n".join(lines) + "\n").encode()


def encode(table: pa.Table, fmt: str) -> bytes:
    sink = io.BytesIO()
    if fmt == "parquet":
        pq.write_table(table, sink, row_group_size=max(1, table.num_rows // 3))
    elif fmt == "arrow":
        with ipc.new_file(sink, table.schema) as w:
            for batch in table.to_batches(max_chunksize=max(1, table.num_rows // 4)):
                w.write_batch(batch)
    elif fmt == "arrows":
        with ipc.new_stream(sink, table.schema) as w:
            w.write_table(table)
    else:
        raise ValueError(fmt)
    return sink.getvalue()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=1)


def start_upload(client: httpx.Client, filename: str, size: int, measurement: str, kind: str = "ohlcv",
                 **extra) -> dict:
    r = client.post("/api/uploads", json={"filename": filename, "size": size, "kind": kind,
                                          "measurement": measurement, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def post_file(upload: dict, data: bytes, filename: str = "data.bin") -> None:
    """The presigned POST, as a browser form would send it."""
    r = httpx.post(upload["url"], data=upload["fields"], files={"file": (filename, data)}, timeout=120)
    assert r.status_code in (200, 201, 204), r.text


def upload(client: httpx.Client, data: bytes, filename: str, measurement: str, kind: str = "ohlcv") -> dict:
    up = start_upload(client, filename, len(data), measurement, kind)
    post_file(up, data, filename)
    return up


def wait_job(client: httpx.Client, job_id: str, timeout: float = 120, until=("COMPLETED", "FAILED", "CANCELLED")):
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"/api/jobs/{job_id}")
        assert r.status_code == 200, r.text
        job = r.json()
        if job["status"] in until:
            return job
        assert time.monotonic() < deadline, f"job still {job['status']} after {timeout}s: {job}"
        time.sleep(0.2)


def count(table: str) -> int:
    q = get_questdb()
    if not q.table_exists(table):
        return 0
    return int(q.exec(f'select count() from "{table}"').dataset[0][0])


def rows(table: str, limit: int = 5) -> list[dict]:
    return get_questdb().exec(f'select * from "{table}" order by timestamp limit {int(limit)}').rows()


def drop(table: str) -> None:
    get_questdb().exec(f'drop table if exists "{table}"')
