"""Export benchmark (on demand, not collected by pytest): our export paths versus QuestDB's /exp.

    STAGE1_ENV_FILE=.state/stage1.env .venv/bin/python tests/benchmarks/bench_export.py [--rows 1000000 10000000]
        [--repeat 2] [--drop]

For each size it makes (once; reused across runs) a WAL predictions table generated server-side
with `long_sequence`, then measures in the same run, alternating:
- `exp`:     QuestDB's own `GET /exp` (CSV), read by this script;
- `gateway`: `POST /api/questdb/export?mode=inline` through a local gateway started by this script
             (streamed; its peak RSS sampled from /proc);
- `job`:     the export job path: the ExporterFunction handler in a subprocess streams /exp into a
             multipart upload to the bucket (MinIO); its peak RSS is the subprocess's ru_maxrss;
             `(store)` right after it is MinIO alone taking the same bytes (it shares the 2 cores);
- `run-csv`: `GET /api/runs/{id}/predictions?format=csv&mode=inline` of a run registered over the API
             for the same table (the resource read: ordered by timestamp, fold; unix-second timestamps);
- `run-job`: the same read with `mode=auto`: 202, the export job on the gateway's runner, polled to done.
It prints rows/s and MB/s of each, the ratios to /exp, peak RSS (and its growth with the table size:
memory must stay flat), and the load average (2 cores, shared with other people's tests).
The gateway download is checked complete (header + one line per row) and so is the job's object size.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from stage1.core import db
from stage1.core.questdb import get_questdb, quote
from stage1.core.settings import get_settings
from stage1.core.storage import get_s3
from stage1.jobs.service import create_job, get_job

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable


def qdb(sql: str) -> list[list]:
    return get_questdb().exec(sql, timeout=600).dataset


def table_rows(name: str) -> int | None:
    rows = qdb(f"select table_row_count, wal_pending_row_count from tables() where table_name = '{name}'")
    if not rows:
        return None
    count, pending = rows[0]
    return (count or 0) if not pending else -1


def ensure_table(rows: int) -> str:
    """`bench_export_predictions_<rows>`: timestamp, bar_index, fold_number, prediction, target and two
    threshold columns, 1-minute bars, 5 folds; WAL with the predictions DEDUP keys."""
    name = f"zz_bench_export_predictions_{rows}"
    if table_rows(name) == rows:
        return name
    qdb(f"drop table if exists {quote(name)}")
    qdb(f"create table {quote(name)} (timestamp TIMESTAMP, bar_index LONG, fold_number INT, prediction DOUBLE, "
        f"target DOUBLE, thr_0_55 INT, thr_0_65 INT) timestamp(timestamp) partition by MONTH WAL "
        f"DEDUP UPSERT KEYS(timestamp, fold_number)")
    started = time.monotonic()
    qdb(f"insert into {quote(name)} select timestamp_sequence(1577836800000000, 60000000), x - 1, "
        f"cast((x - 1) * 5 / {rows} as int), rnd_double(), cast(rnd_int(0, 1, 0) as double), "
        f"rnd_int(0, 1, 0), rnd_int(0, 1, 0) from long_sequence({rows})")
    while table_rows(name) != rows:
        time.sleep(0.5)
    print(f"  created {name} ({rows:,} rows) in {time.monotonic() - started:.1f} s", flush=True)
    return name


class RssSampler:
    """Peak resident memory of a process, sampled from /proc every 10 ms."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(0.01)

    def __enter__(self) -> RssSampler:
        self.peak = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def gateway():
    port = free_port()
    # A benchmark gateway, not a Lambda: inline reads may take longer than the 25 s synchronous default.
    env = {**os.environ, "STAGE1_GATEWAY_URL": f"http://127.0.0.1:{port}", "STAGE1_EXPORT_CAN_STREAM": "true",
           "STAGE1_EXPORT_MAX_TIMEOUT": "900"}
    proc = subprocess.Popen([PY, "-m", "stage1_local.gateway", "--port", str(port)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        token = httpx.post(f"{url}/api/auth/token", headers={"X-Stage1-Admin-Secret": get_settings().auth.admin_secret},
                           json={"name": "bench-export", "scopes": ["read", "write"], "expires_in": 3600}, timeout=30)
        headers = {"X-Stage1-Token": token.json()["token"]} if token.status_code == 201 else {}
        yield url, proc.pid, headers
    finally:
        proc.terminate()
        proc.wait(10)


def run_exp(sql: str) -> dict:
    started, size, lines = time.monotonic(), 0, 0
    with httpx.stream("GET", f"{get_settings().questdb.qdb_http_url}/exp", params={"query": sql}, timeout=600) as r:
        r.raise_for_status()
        for piece in r.iter_raw():
            size += len(piece)
            lines += piece.count(b"\n")
    return {"seconds": time.monotonic() - started, "bytes": size, "lines": lines}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def run_gateway(url: str, pid: int, headers: dict, sql: str) -> dict:
    cpu_before = cpu_seconds(pid)
    with RssSampler(pid) as rss:
        base = rss.peak
        started, size, lines = time.monotonic(), 0, 0
        with httpx.stream("POST", f"{url}/api/questdb/export", params={"mode": "inline", "timeout": 900},
                          json={"sql": sql}, headers=headers, timeout=600) as r:
            r.raise_for_status()
            for piece in r.iter_raw():
                size += len(piece)
                lines += piece.count(b"\n")
        seconds = time.monotonic() - started
    return {"seconds": seconds, "bytes": size, "lines": lines, "rss_base": base, "rss_peak": rss.peak,
            "cpu": cpu_seconds(pid) - cpu_before}


# The job's own time is measured inside the subprocess (a warm Lambda does not pay the imports).
JOB_RUNNER = """
import json, resource, sys, time, importlib.util
spec = importlib.util.spec_from_file_location("exporter_handler", sys.argv[2])
module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
maxrss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
base, started, cpu0 = maxrss(), time.monotonic(), cpu()
out = module.handler({"job_id": sys.argv[1]}, None)
print(json.dumps({**out, "seconds": time.monotonic() - started, "rss_base": base, "rss_peak": maxrss(),
                  "cpu": cpu() - cpu0}))
"""


def run_job(sql: str) -> dict:
    with db.connection() as conn:
        job = create_job(conn, "export", {"function": "ExporterFunction", "sql": sql, "format": "csv",
                                          "timeout": 900, "filename": "bench"})
    done = subprocess.run([PY, "-c", JOB_RUNNER, job.job_id, str(REPO / "functions/exporter/handler.py")],
                          cwd=REPO, capture_output=True, text=True, check=True)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    seconds = out["seconds"]
    result = get_job(job.job_id).result or {}
    head = get_s3().head_object(Bucket=result["bucket"], Key=result["key"])
    get_s3().delete_object(Bucket=result["bucket"], Key=result["key"])
    return {"seconds": seconds, "bytes": head["ContentLength"], "lines": result["rows"] + 1, "outcome": out["outcome"],
            "rss_base": out["rss_base"], "rss_peak": out["rss_peak"], "cpu": out["cpu"]}


def ensure_run(url: str, headers: dict, table: str) -> str:
    """A dataset and a run registered over the API for the benchmark table (as the desktop does when
    it wrote the predictions itself), reused across runs: GET /api/runs/{id}/predictions reads it."""
    with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
        runs = c.get("/api/runs", params={"measurement": table}).json()
        if runs.get("runs"):
            return runs["runs"][0]["run_id"]
        slug = table.replace("predictions_", "")[:63]
        r = c.get(f"/api/datasets/{slug}")
        if r.status_code == 404:
            r = c.post("/api/datasets", json={"dataset_slug": slug, "symbol": "BENCH", "granularity": "1m"})
        dataset_id = r.json()["dataset_id"]
        r = c.post("/api/runs", json={"dataset_id": dataset_id, "prediction_measurement": table,
                                      "target_column": "target", "threshold_columns": ["thr_0_55", "thr_0_65"]})
        assert r.status_code == 201, r.text[:300]
        return r.json()["run_id"]


def run_predictions_inline(url: str, pid: int, headers: dict, run_id: str) -> dict:
    """GET /api/runs/{id}/predictions?format=csv&mode=inline: the resource read, streamed."""
    cpu_before = cpu_seconds(pid)
    with RssSampler(pid) as rss:
        base = rss.peak
        started, size, lines = time.monotonic(), 0, 0
        with httpx.stream("GET", f"{url}/api/runs/{run_id}/predictions", params={"format": "csv", "mode": "inline"},
                          headers=headers, timeout=600) as r:
            r.raise_for_status()
            for piece in r.iter_raw():
                size += len(piece)
                lines += piece.count(b"\n")
        seconds = time.monotonic() - started
    return {"seconds": seconds, "bytes": size, "lines": lines, "rss_base": base, "rss_peak": rss.peak,
            "cpu": cpu_seconds(pid) - cpu_before}


def run_predictions_job(url: str, pid: int, headers: dict, run_id: str) -> dict:
    """The same read as an export job (mode=auto: 202), run by the gateway's local runner, to done."""
    cpu_before = cpu_seconds(pid)
    with RssSampler(pid) as rss, httpx.Client(base_url=url, headers=headers, timeout=600) as c:
        base = rss.peak
        started = time.monotonic()
        r = c.get(f"/api/runs/{run_id}/predictions", params={"format": "csv"})
        assert r.status_code == 202, r.text[:300]
        while (job := c.get(r.json()["poll_url"]).json())["status"] in ("PENDING", "RUNNING"):
            time.sleep(0.1)
        seconds = time.monotonic() - started
    assert job["status"] == "COMPLETED", job
    result = job["result"]
    head = get_s3().head_object(Bucket=result["bucket"], Key=result["key"])
    get_s3().delete_object(Bucket=result["bucket"], Key=result["key"])
    return {"seconds": seconds, "bytes": head["ContentLength"], "lines": result["rows"] + 1, "rss_base": base,
            "rss_peak": rss.peak, "cpu": cpu_seconds(pid) - cpu_before}


def run_store(size: int) -> dict:
    """Reference: the object store alone taking the same number of bytes through our multipart writer
    (from memory, no QuestDB): on this machine MinIO shares the 2 cores, so it bounds the job path."""
    from stage1.exports.multipart import MultipartWriter

    piece = os.urandom(1 << 20)
    settings = get_settings()
    started = time.monotonic()
    writer = MultipartWriter(settings.store.bucket, "exports/bench-store-reference/blob", content_type="text/csv",
                             part_bytes=settings.exports.export_part_bytes)
    for _ in range(size >> 20):
        writer.write(piece)
    writer.complete()
    seconds = time.monotonic() - started
    get_s3().delete_object(Bucket=settings.store.bucket, Key="exports/bench-store-reference/blob")
    return {"seconds": seconds, "bytes": (size >> 20) << 20}


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def mb(n: float) -> str:
    return f"{n / 1e6:,.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeat", type=int, default=2, help="runs per path and size; the best is reported")
    parser.add_argument("--drop", action="store_true", help="drop the benchmark tables afterwards")
    args = parser.parse_args()
    print(f"cpus {os.cpu_count()}, load {load()}", flush=True)
    summary = []
    # Two gateways: the streamed downloads are measured in one, the run-job exports (which the
    # gateway runs on its own threads, holding upload parts) in the other, so neither's RSS
    # carries what the other allocated.
    with gateway() as (url, pid, headers), gateway() as (job_url, job_pid, job_headers):
        for rows in args.rows:
            name = ensure_table(rows)
            sql = f"select * from {name}"
            run_id = ensure_run(url, headers, name)
            best: dict[str, dict] = {}
            for attempt in range(args.repeat):
                paths = (("exp", lambda: run_exp(sql)), ("gateway", lambda: run_gateway(url, pid, headers, sql)),
                         ("job", lambda: run_job(sql)),
                         ("run-csv", lambda: run_predictions_inline(url, pid, headers, run_id)),
                         ("run-job", lambda: run_predictions_job(job_url, job_pid, job_headers, run_id)))
                for path, run in paths:
                    before = load()
                    result = run()
                    assert result["lines"] == rows + 1, (path, result["lines"], rows)  # header + every row
                    result["load"] = f"{before} → {load()}"
                    rate = result["bytes"] / result["seconds"] / 1e6
                    print(f"  {rows:>11,} {path:8} run {attempt + 1}: {result['seconds']:6.2f} s "
                          f"{rows / result['seconds']:>12,.0f} rows/s {rate:7.1f} MB/s"
                          + (f"  peak RSS {mb(result['rss_peak'])} (at start {mb(result['rss_base'])}),"
                             f" CPU {result['cpu']:.1f} s" if "rss_peak" in result else "")
                          + f"  load {result['load']}", flush=True)
                    if path not in best or result["seconds"] < best[path]["seconds"]:
                        best[path] = result
                    if path == "job":  # the store's own pace for the same bytes, right after
                        store = run_store(result["bytes"])
                        print(f"  {rows:>11,} {'(store)':8} run {attempt + 1}: {store['seconds']:6.2f} s "
                              f"{store['bytes'] / store['seconds'] / 1e6:29.1f} MB/s  MinIO alone, same bytes",
                              flush=True)
                        if "store" not in best or store["seconds"] < best["store"]["seconds"]:
                            best["store"] = store
            summary.append((rows, best))
            if args.drop:
                httpx.delete(f"{url}/api/datasets/{name.replace('predictions_', '')[:63]}", headers=headers,
                             params={"cascade": "true", "drop_questdb": "true"}, timeout=120)
                qdb(f"drop table if exists {quote(name)}")
    print("\nbest of each (rows/s; ratio to /exp; peak RSS):")
    for rows, best in summary:
        exp = rows / best["exp"]["seconds"]
        line = [f"{rows:>11,} rows, {mb(best['exp']['bytes'])} CSV: exp {exp:,.0f}"]
        for path in ("gateway", "job", "run-csv", "run-job"):
            r = best[path]
            ours = rows / r["seconds"]
            line.append(f"{path} {ours:,.0f} ({ours / exp:.2f}x, peak RSS {mb(r['rss_peak'])})")
        store = best["store"]
        line.append(f"MinIO alone {store['bytes'] / store['seconds'] / 1e6:,.0f} MB/s")
        print("  " + "; ".join(line))
    if len(summary) > 1:
        (small, s), (large, g) = summary[0], summary[-1]
        for path in ("gateway", "job", "run-csv", "run-job"):
            print(f"  {path} peak RSS {small:,} → {large:,} rows: "
                  f"{mb(s[path]['rss_peak'])} → {mb(g[path]['rss_peak'])}")


if __name__ == "__main__":
    main()
