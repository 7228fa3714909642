"""Import benchmark (on demand, not collected by pytest): our import phase versus QuestDB's own
`/imp` of the same file, same machine, same run, for every format the importer reads.

    STAGE1_ENV_FILE=.state/stage1.env .venv/bin/python tests/benchmarks/bench_import.py \
        [--rows 1000000,10000000] [--formats epoch,iso,gz,parquet,arrow] [--dir /tmp/stage1-bench]
        [--skip-pipeline] [--skip-imp] [--stages] [--max-load 1.5 --wait-load 300] [--keep]

Per file (bench_import_files.py: CSV with epoch seconds, CSV with ISO-8601 µs UTC timestamps,
CSV.gz, Parquet, Arrow IPC; made once, outside the repo):
1. pipeline: POST /api/uploads (multipart above 64 MiB), the file sent with plain httpx, then the
   import phase: from the end of the upload (multipart: the complete call) to the job's COMPLETED
   (the bucket's event → the gateway on :3000 → importer → QuestDB, WAL applied, rows counted).
2. importer: the import core alone in a fresh subprocess on the same object into a new target, step
   by step (rows sent, staging WAL applied, renamed/copied into the target, bookkeeping; the
   fingerprint a dataset import adds after it), with the CPU of the importer process and of QuestDB
   per step, and the importer's peak RSS (VmHWM).
3. imp: QuestDB's `POST /imp` of the same CSV (streamed from disk) into a new table, then its
   WAL applied and its rows counted (CSV files only; Parquet/Arrow are compared with `/imp` of the
   CSV of the same rows).
`--stages` adds the serial per-stage profile of bench_import_stages.py (read, parse, timestamps,
frames, ILP encode, ILP send, WAL apply, copy, fingerprint) for each file.
The 1-minute load average is printed beside every figure; `--max-load` waits (up to `--wait-load`
seconds) before each measurement for the machine to be that quiet (2 cores, shared).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_import_files as files  # noqa: E402
import bench_import_stages as stages  # noqa: E402

from stage1.core.questdb import get_questdb  # noqa: E402
from stage1.core.settings import get_settings  # noqa: E402

CSV_FORMATS = ("epoch", "iso")


def token() -> str:
    env = Path(os.environ.get("STAGE1_ENV_FILE", ".state/stage1.env"))
    for line in env.read_text().splitlines():
        if line.startswith("STAGE1_TOKEN="):
            return line.split("=", 1)[1].strip()
    return ""


def load() -> float:
    return os.getloadavg()[0]


def quiet(max_load: float | None, wait: float) -> float:
    """Wait (at most `wait` s) for the 1-minute load to drop below `max_load`; the load then."""
    deadline = time.monotonic() + wait
    while max_load is not None and load() >= max_load and time.monotonic() < deadline:
        time.sleep(5)
    return load()


def count(table: str) -> int:
    return int(get_questdb().exec(f'select count() from "{table}"').dataset[0][0])


def qdb_cpu() -> float | None:
    try:
        fields = Path(f"/proc/{stages.questdb_pid()}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None


def pipeline(client: httpx.Client, path: Path, fmt: str, table: str) -> dict:
    size = path.stat().st_size
    r = client.post("/api/uploads", json={"filename": files.FILENAME[fmt], "size": size, "kind": "ohlcv",
                                          "measurement": table, "granularity": "1m"})
    r.raise_for_status()
    up = r.json()
    t_upload = time.monotonic()
    with open(path, "rb") as f, httpx.Client(timeout=300) as raw:
        if up["method"] == "POST":
            raw.post(up["url"], data=up["fields"], files={"file": (files.FILENAME[fmt], f)}).raise_for_status()
            parts = None
        else:
            parts = []
            for part in up["parts"]:
                f.seek((part["part_number"] - 1) * up["part_size"])
                resp = raw.put(part["url"], content=f.read(up["part_size"]))
                resp.raise_for_status()
                parts.append({"part_number": part["part_number"], "etag": resp.headers["etag"]})
    upload_s = time.monotonic() - t_upload
    la, q0, t0 = load(), qdb_cpu(), time.monotonic()
    if parts is not None:
        client.post(up["complete_url"], json={"parts": parts}).raise_for_status()
    while True:
        job = client.get(up["poll_url"]).json()
        if job["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
            break
        time.sleep(0.05)
    elapsed, q1 = time.monotonic() - t0, qdb_cpu()
    if job["status"] != "COMPLETED":
        raise SystemExit(f"pipeline job {job['status']}: {job['error']}")
    return {"seconds": elapsed, "rows": count(table), "object_key": up["object_key"], "upload_seconds": upload_s,
            "importer_seconds": job["result"]["seconds"], "copy_seconds": job["result"].get("staging_copy_seconds"),
            "load": la, "qdb_cpu": None if q0 is None or q1 is None else q1 - q0}


def imp(path: Path, table: str) -> dict:
    from stage1.imports.core import wait_applied

    url = get_settings().questdb.qdb_http_url.rstrip("/")
    la, q0, t0 = load(), qdb_cpu(), time.monotonic()
    with open(path, "rb") as f:
        r = httpx.post(f"{url}/imp", params={"name": table, "fmt": "json", "overwrite": "false"},
                       files={"data": (table, f)}, timeout=1800)
    r.raise_for_status()
    wait_applied(table, timeout=600)
    elapsed, q1 = time.monotonic() - t0, qdb_cpu()
    return {"seconds": elapsed, "rows": count(table), "load": la,
            "qdb_cpu": None if q0 is None or q1 is None else q1 - q0}


def rate(d: dict | None) -> float | None:
    return None if d is None else d["rows"] / d["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="1000000,10000000", help="comma-separated row counts")
    parser.add_argument("--formats", default=",".join(files.FORMATS), help=f"any of {','.join(files.FORMATS)}")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/stage1-bench"))
    parser.add_argument("--skip-pipeline", action="store_true")
    parser.add_argument("--skip-imp", action="store_true")
    parser.add_argument("--stages", action="store_true", help="also the serial per-stage profile")
    parser.add_argument("--existing-target", action="store_true", help="importer: into an existing target (copy)")
    parser.add_argument("--max-load", type=float, default=None, help="wait for a 1-min load below this")
    parser.add_argument("--wait-load", type=float, default=300.0)
    parser.add_argument("--keep", action="store_true", help="keep the tables")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the importer subprocess")
    args = parser.parse_args()
    settings = get_settings()
    client = httpx.Client(base_url=settings.service.gateway_url, headers={"X-Stage1-Token": token()}, timeout=60)
    env = dict(e.split("=", 1) for e in args.env)
    formats = [f for f in args.formats.split(",") if f]
    summary: list[tuple[int, str, dict | None, dict, dict | None]] = []
    imp_of: dict[tuple[int, str], dict] = {}
    tables: list[str] = []
    try:
        for rows in (int(r) for r in args.rows.split(",")):
            for fmt in formats:
                path = files.make(args.dir, rows, fmt)
                mb = path.stat().st_size / 1e6
                print(f"\n== {path.name}: {mb:.0f} MB, {rows:,} rows ({fmt})", flush=True)
                suffix = uuid.uuid4().hex[:8]
                names = {k: f"zz_bench_{k}_{suffix}" for k in ("pipeline", "staging", "importer", "imp")}
                tables.extend(names.values())
                p = None
                if not args.skip_pipeline:
                    quiet(args.max_load, args.wait_load)
                    p = pipeline(client, path, fmt, names["pipeline"])
                    key = p["object_key"]
                    print(f"  pipeline: uploaded in {p['upload_seconds']:.1f} s, import phase {p['seconds']:.2f} s "
                          f"= {rate(p):,.0f} rows/s (importer's clock {p['importer_seconds']:.2f} s, copy "
                          f"{p['copy_seconds'] or 0:.2f} s), load {p['load']:.2f}", flush=True)
                else:
                    key = f"bench/{path.name}"
                    stages.put_object(path, key)
                if args.stages:
                    quiet(args.max_load, args.wait_load)
                    print("  stages one after the other (no overlap):", flush=True)
                    stages.print_stages(stages.run(stages.STAGES, key, names["staging"] + "x", names["importer"] + "x",
                                                   stages.questdb_pid(), env), rows)
                    tables.extend([names["staging"] + "x", names["importer"] + "x"])
                quiet(args.max_load, args.wait_load)
                print("  importer (the import core alone, overlapped):", flush=True)
                i = stages.print_total(stages.run(stages.TOTAL, key, names["staging"], names["importer"],
                                                  stages.questdb_pid(), env, existing=args.existing_target),
                                       rows, indent="    ")
                m = None
                if fmt in CSV_FORMATS and not args.skip_imp:
                    quiet(args.max_load, args.wait_load)
                    m = imp(path, names["imp"])
                    imp_of[(rows, fmt)] = m
                    print(f"  QuestDB /imp: {m['seconds']:.2f} s = {rate(m):,.0f} rows/s, QuestDB cpu "
                          f"{m['qdb_cpu'] or 0:.2f} s, load {m['load']:.2f}", flush=True)
                summary.append((rows, fmt, p, i, m))
                if not args.keep:
                    for name in names.values():
                        get_questdb().exec(f'drop table if exists "{name}"')
        print("\nsummary (rows/s; ratio = ours / QuestDB /imp of the CSV of the same rows: the same file for "
              "CSV, epoch and ISO for the others)")
        print(f"  {'rows':>10} {'format':8} {'pipeline':>10} {'importer':>10} {'/imp':>10} {'pipe/imp':>9} "
              f"{'imp./imp':>9} {'RSS MB':>7} {'load':>5}")
        for rows, fmt, p, i, m in summary:
            base = m or imp_of.get((rows, "epoch"))
            iso = imp_of.get((rows, "iso"))

            def ratio(x: dict | None, b: dict | None) -> str:
                return f"{rate(x) / rate(b):.2f}" if x and b else "-"

            ratios_p = ratio(p, base) + ("" if m or not iso else f"/{ratio(p, iso)}")
            ratios_i = ratio(i, base) + ("" if m or not iso else f"/{ratio(i, iso)}")
            print(f"  {rows:>10,} {fmt:8} {rate(p) or 0:>10,.0f} {rate(i):>10,.0f} {rate(m) or 0:>10,.0f} "
                  f"{ratios_p:>9} {ratios_i:>9} {i['peak_rss_mb']:>7.0f} {load():5.2f}")
        for rows, fmt, p, _, _ in summary:
            if p is not None:
                assert p["rows"] == rows, (fmt, p["rows"], rows)
    finally:
        if not args.keep:
            for name in tables:
                get_questdb().exec(f'drop table if exists "{name}"')


if __name__ == "__main__":
    main()
