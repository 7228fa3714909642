"""Import benchmark (on demand, not collected by pytest): our upload → event → importer → QuestDB
pipeline versus QuestDB's own `/imp` of the same file, same machine, same run.

    STAGE1_ENV_FILE=.state/stage1.env .venv/bin/python tests/benchmarks/bench_import.py \
        [--rows 10000000] [--dir /tmp/stage1-bench] [--skip-imp] [--keep]

1. Makes (once, streaming, reused across runs) an OHLCV CSV of `--rows` rows outside the repo.
2. pipeline: POST /api/uploads (multipart above 64 MiB), PUT the parts with plain httpx, then
   POST /complete; measured from the complete call to the job's COMPLETED (the bucket's event →
   gateway on :3000 → importer → QuestDB, WAL applied), with the row count checked.
3. importer: the import core alone in a subprocess on the same object into a fresh table (the
   same code the importer runs), with its rows/s, CPU time and peak RSS (VmHWM of that process).
4. imp: QuestDB's `POST /imp` of the same file into another table (streamed from disk), then its
   WAL applied and its rows counted.
Prints rows/s of each, the ratios, the importer's peak RSS and the load average before each step
(2 cores shared with other people's tests: re-run when quiet).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from stage1.core.questdb import get_questdb
from stage1.core.settings import get_settings

HEADER = b"timestamp_unix,open,high,low,close,volume\n"


def make_csv(path: Path, rows: int) -> None:
    """1-minute bars from 2017 on; written in chunks of 1M rows (never whole in memory)."""
    import numpy as np

    if path.exists() and path.with_suffix(".rows").exists() and int(path.with_suffix(".rows").read_text()) == rows:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(42)
    tmp = path.with_suffix(".part")
    with open(tmp, "wb") as f:
        f.write(HEADER)
        for start in range(0, rows, 1_000_000):
            n = min(1_000_000, rows - start)
            ts = 1_500_000_000 + 60 * np.arange(start, start + n)
            o = 100 + rng.random(n) * 10
            c = o + rng.standard_normal(n)
            h = np.maximum(o, c) + rng.random(n)
            lo = np.minimum(o, c) - rng.random(n)
            v = rng.random(n) * 1000
            np.savetxt(f, np.column_stack([ts, o, h, lo, c, v]), delimiter=",",
                       fmt=["%d", "%.4f", "%.4f", "%.4f", "%.4f", "%.3f"])
    tmp.rename(path)
    path.with_suffix(".rows").write_text(str(rows))


def token() -> str:
    env = Path(os.environ.get("STAGE1_ENV_FILE", ".state/stage1.env"))
    for line in env.read_text().splitlines():
        if line.startswith("STAGE1_TOKEN="):
            return line.split("=", 1)[1].strip()
    return ""


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def count(table: str) -> int:
    return int(get_questdb().exec(f'select count() from "{table}"').dataset[0][0])


def wait_wal(table: str) -> None:
    from stage1.imports.core import wait_applied

    wait_applied(table, timeout=600)


def pipeline(client: httpx.Client, path: Path, table: str) -> dict:
    size = path.stat().st_size
    r = client.post("/api/uploads", json={"filename": "bars.csv", "size": size, "kind": "ohlcv",
                                          "measurement": table, "granularity": "1m"})
    r.raise_for_status()
    up = r.json()
    t_upload = time.monotonic()
    with open(path, "rb") as f, httpx.Client(timeout=300) as raw:
        if up["method"] == "POST":
            raw.post(up["url"], data=up["fields"], files={"file": ("bars.csv", f)}).raise_for_status()
            parts = None
        else:
            parts = []
            for part in up["parts"]:
                f.seek((part["part_number"] - 1) * up["part_size"])
                resp = raw.put(part["url"], content=f.read(up["part_size"]))
                resp.raise_for_status()
                parts.append({"part_number": part["part_number"], "etag": resp.headers["etag"]})
    upload_s = time.monotonic() - t_upload
    print(f"  uploaded {size / 1e6:.0f} MB in {upload_s:.1f} s ({load()})", flush=True)
    t0 = time.monotonic()
    if parts is not None:
        client.post(up["complete_url"], json={"parts": parts}).raise_for_status()
    while True:
        job = client.get(up["poll_url"]).json()
        if job["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
            break
        time.sleep(0.1)
    elapsed = time.monotonic() - t0
    if job["status"] != "COMPLETED":
        raise SystemExit(f"pipeline job {job['status']}: {job['error']}")
    return {"seconds": elapsed, "rows": count(table), "object_key": up["object_key"],
            "importer_seconds": job["result"]["seconds"],
            "staging_copy_seconds": job["result"].get("staging_copy_seconds")}


def millions_of(rows: int) -> float:
    return rows / 1e6


IMPORTER_ONLY = r"""
import json, resource, sys, time
from stage1.imports.core import import_file, wait_applied
from stage1.imports.service import object_source
from stage1.core.settings import get_settings
from stage1.timeseries.kinds import Kind, ensure_table
bucket, key, table = sys.argv[1:4]


def peak_rss_mb():
    # VmHWM: this address space's peak. Not ru_maxrss, which survives exec and so can report the
    # parent's RSS at fork time (this benchmark's own, after reading the file) instead of ours.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

s = get_settings()
src = object_source(bucket, key)
r0 = resource.getrusage(resource.RUSAGE_SELF)
t0 = time.monotonic()
stats = import_file(src, Kind.OHLCV, table, prepare=lambda p: ensure_table(Kind.OHLCV, table, "1m"),
                    senders=s.imports.import_senders, block_size=s.imports.import_block_bytes,
                    batch_rows=s.imports.import_batch_rows)
sent = time.monotonic() - t0
wait_applied(table, timeout=600)
r1 = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"rows": stats.rows, "sent_seconds": sent, "seconds": time.monotonic() - t0,
                  "cpu_seconds": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime),
                  "peak_rss_mb": peak_rss_mb()}))
"""


def questdb_cpu() -> float | None:
    """CPU seconds QuestDB's JVM has used so far (the local stack's pid file), or None."""
    try:
        state = Path(os.environ.get("STAGE1_STATE_DIR") or Path(__file__).resolve().parents[2] / ".state")
        pid = int((state / "run" / "questdb.pid").read_text())
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None


def with_questdb_cpu(fn, *args) -> dict:
    before = questdb_cpu()
    out = fn(*args)
    after = questdb_cpu()
    if before is not None and after is not None:
        out["questdb_cpu_seconds"] = after - before
    return out


def importer_only(key: str, table: str, env_extra: dict[str, str]) -> dict:
    env = {**os.environ, **env_extra}
    out = subprocess.run([sys.executable, "-c", IMPORTER_ONLY, get_settings().store.bucket, key, table],
                         capture_output=True, text=True, env=env, timeout=1800)
    if out.returncode != 0:
        raise SystemExit(f"importer subprocess failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def imp(path: Path, table: str) -> dict:
    url = get_settings().questdb.qdb_http_url.rstrip("/")
    t0 = time.monotonic()
    with open(path, "rb") as f:
        r = httpx.post(f"{url}/imp", params={"name": table, "fmt": "json", "overwrite": "false"},
                       files={"data": (table, f)}, timeout=1800)
    r.raise_for_status()
    body = r.json()
    wait_wal(table)
    return {"seconds": time.monotonic() - t0, "rows": count(table), "rowsImported": body.get("rowsImported"),
            "rowsRejected": body.get("rowsRejected")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/stage1-bench"))
    parser.add_argument("--skip-imp", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the tables")
    parser.add_argument("--senders", default=None, help="importer-only: STAGE1_IMPORT_SENDERS")
    parser.add_argument("--block-mb", default=None, help="importer-only: STAGE1_IMPORT_BLOCK_BYTES in MiB")
    parser.add_argument("--batch-rows", default=None, help="importer-only: STAGE1_IMPORT_BATCH_ROWS")
    args = parser.parse_args()
    settings = get_settings()
    path = args.dir / f"ohlcv_{args.rows}.csv"
    t = time.monotonic()
    make_csv(path, args.rows)
    mb = path.stat().st_size / 1e6
    print(f"file {path}: {mb:.0f} MB, {args.rows:,} rows (ready in {time.monotonic() - t:.0f} s)")
    suffix = uuid.uuid4().hex[:8]
    tables = {k: f"zz_bench_{k}_{suffix}" for k in ("pipeline", "importer", "imp")}
    client = httpx.Client(base_url=settings.service.gateway_url, headers={"X-Stage1-Token": token()}, timeout=60)
    results: dict[str, dict] = {}
    key = None
    try:
        print(f"pipeline ({load()})", flush=True)
        results["pipeline"] = p = with_questdb_cpu(pipeline, client, path, tables["pipeline"])
        key = p["object_key"]
        print(f"  {p['rows']:,} rows in {p['seconds']:.2f} s: {p['rows'] / p['seconds']:,.0f} rows/s "
              f"(importer's own clock {p['importer_seconds']:.2f} s)", flush=True)
        extra = {}
        if args.senders:
            extra["STAGE1_IMPORT_SENDERS"] = args.senders
        if args.batch_rows:
            extra["STAGE1_IMPORT_BATCH_ROWS"] = args.batch_rows
        if args.block_mb:
            extra["STAGE1_IMPORT_BLOCK_BYTES"] = str(int(float(args.block_mb) * 1024 * 1024))
        print(f"importer only ({load()})", flush=True)
        results["importer"] = i = with_questdb_cpu(importer_only, key, tables["importer"], extra)
        print(f"  {i['rows']:,} rows in {i['seconds']:.2f} s: {i['rows'] / i['seconds']:,.0f} rows/s "
              f"(sent in {i['sent_seconds']:.2f} s), peak RSS {i['peak_rss_mb']:.0f} MB", flush=True)
        if not args.skip_imp:
            print(f"QuestDB /imp ({load()})", flush=True)
            results["imp"] = m = with_questdb_cpu(imp, path, tables["imp"])
            print(f"  {m['rows']:,} rows in {m['seconds']:.2f} s: {m['rows'] / m['seconds']:,.0f} rows/s", flush=True)
        copy = results["pipeline"].get("staging_copy_seconds")
        if copy is not None:
            print(f"  staging copy (INSERT ... SELECT + WAL applied): {copy:.2f} s = "
                  f"{copy / millions_of(args.rows):.2f} s per million rows", flush=True)
        print("\nsummary")
        rate = {k: v["rows"] / v["seconds"] for k, v in results.items()}
        for k, v in rate.items():
            print(f"  {k:9} {v:>12,.0f} rows/s")
        if "imp" in rate:
            print(f"  pipeline / imp = {rate['pipeline'] / rate['imp']:.2f}, importer / imp = "
                  f"{rate['importer'] / rate['imp']:.2f}")
        print(f"  importer peak RSS {results['importer']['peak_rss_mb']:.0f} MB; {load()}")
        millions = args.rows / 1e6
        print("  CPU seconds per million rows: importer process "
              f"{results['importer']['cpu_seconds'] / millions:.2f}"
              + "".join(f", QuestDB during {k} {v['questdb_cpu_seconds'] / millions:.2f}"
                        for k, v in results.items() if "questdb_cpu_seconds" in v))
        assert results["pipeline"]["rows"] == args.rows and results["importer"]["rows"] == args.rows
    finally:
        if not args.keep:
            for name in tables.values():
                get_questdb().exec(f'drop table if exists "{name}"')


if __name__ == "__main__":
    main()
