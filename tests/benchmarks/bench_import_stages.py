"""Where an import's time goes, stage by stage (on demand, not collected by pytest).

    STAGE1_ENV_FILE=.state/stage1.env .venv/bin/python tests/benchmarks/bench_import_stages.py \
        [--rows 10000000] [--format epoch|iso|gz|parquet|arrow] [--dir /tmp/stage1-bench]

Uploads the benchmark file (bench_import_files.py) to the bucket once, then, in a fresh subprocess
(the import core alone), runs each stage of an import ONE AFTER THE OTHER, with no overlap, so that
each stage's wall time and CPU are its own: the importer process's CPU (getrusage), QuestDB's
(its JVM's /proc/<pid>/stat) and MinIO's (it serves the reads) per stage. The stages:

    read         the object streamed from the bucket (pyarrow's S3 client, 8 MiB buffered GETs)
    parse        the file's batches decoded (CSV: pyarrow's reader, its threads; from memory)
    timestamps   `normalize.table_batch`: timestamps to µs, the columns the table gets
    frames       joined into `batch_rows`-row frames, Arrow-backed pandas (`core._frame`)
    ilp encode   `Buffer.dataframe`: the frame serialised as ILP (the client's C code)
    ilp send     the encoded requests sent, one at a time (QuestDB parses and writes its WAL)
    wal apply    what QuestDB still had to apply after the last request (wait_applied)
    copy         `core.copy_into` into an existing target (INSERT ... SELECT), then its WAL applied
                 (a target that does not exist yet is a RENAME of the staging table instead: ~0 s)
    fingerprint  `stage1.timeseries.fingerprint` of the target (a dataset import's version)
    bookkeeping  `table_stats` of the target (count/min/max) and the staging table dropped

Then the same file through `import_file` as the importer runs it (stages overlapped) for the total.
The load average is printed beside every figure: on 2 shared cores, re-run when it is high.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_import_files as files  # noqa: E402

from stage1.core.questdb import get_questdb  # noqa: E402
from stage1.core.settings import get_settings  # noqa: E402

CPU = r"""
import json, os, resource, sys, time
from pathlib import Path

bucket, key, staging, target, qdb_pid, existing = sys.argv[1:7]
tick = os.sysconf("SC_CLK_TCK")

def _proc_cpu(pid):
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick

def qdb_cpu():
    return _proc_cpu(qdb_pid)

def minio_cpu():  # MinIO serves the reads
    return _proc_cpu(os.environ["BENCH_MINIO_PID"]) if os.environ.get("BENCH_MINIO_PID") else 0.0

def me_cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
"""

STAGES = CPU + r"""
import pyarrow as pa, pyarrow.compute as pc
from stage1.core.questdb import get_questdb, ilp_sender
from stage1.core.settings import get_settings
from stage1.imports import core
from stage1.imports.formats import Source, open_batches
from stage1.imports.normalize import plan, table_batch
from stage1.imports.service import object_source
from stage1.timeseries.fingerprint import fingerprint
from stage1.timeseries.kinds import TIMESTAMP, Kind, drop_table, ensure_table

s = get_settings().imports

out = {}
class stage:
    def __init__(self, name): self.name = name
    def __enter__(self):
        self.t, self.c, self.q, self.m = time.monotonic(), me_cpu(), qdb_cpu(), minio_cpu()
    def __exit__(self, *exc):
        d = out.setdefault(self.name, {"seconds": 0.0, "cpu": 0.0, "qdb_cpu": 0.0, "minio_cpu": 0.0})
        d["seconds"] += time.monotonic() - self.t
        d["cpu"] += me_cpu() - self.c
        d["qdb_cpu"] += qdb_cpu() - self.q
        d["minio_cpu"] += minio_cpu() - self.m
        d["load"] = os.getloadavg()[0]

src = object_source(bucket, key)
with stage("read"):
    stream, chunks = src.stream(), []
    while chunk := stream.read(8 << 20):
        chunks.append(chunk)
    stream.close()
    data = b"".join(chunks)
    del chunks
mem = Source.from_bytes(data)
with stage("parse"):
    b = open_batches(mem, hints=core.column_hints(Kind.OHLCV), block_size=s.import_block_bytes)
    parsed = list(b.batches)
p = plan(Kind.OHLCV, b.schema)
del data
with stage("timestamps"):
    rows, n = [], 0
    for batch in parsed:
        rows.append(table_batch(p, batch, n))
        lo, hi = pc.min_max(rows[-1].column(TIMESTAMP)).values()
        n += batch.num_rows
del parsed
with stage("frames"):
    frames, pending, count = [], [], 0
    for t in rows:
        pending.append(t); count += t.num_rows
        if count >= s.import_batch_rows:
            frames.append(core._frame(core._join(pending), p)); pending, count = [], 0
    if pending:
        frames.append(core._frame(core._join(pending), p))
del rows
drop_table(staging)
ensure_table(Kind.OHLCV, staging, "1m")
sender = ilp_sender(**core.SENDER_OPTIONS)
sender.establish()
for frame in frames:
    with stage("ilp encode"):
        buf = sender.new_buffer()
        buf.dataframe(frame, table_name=staging, at=TIMESTAMP)
    with stage("ilp send"):
        sender.flush(buf)
out["ilp encode"]["bytes"] = 0
sender.close()
del frames
with stage("wal apply"):
    core.wait_applied(staging, timeout=600)
ensure_table(Kind.OHLCV, target, "1m")
with stage("copy"):
    core.copy_into(staging, target, timeout=600)
    core.wait_applied(target, timeout=600)
with stage("fingerprint"):
    fp = fingerprint(target)
with stage("bookkeeping"):
    ts = core.table_stats(target)
    drop_table(staging)
out["rows"] = ts.rows
print(json.dumps(out))
"""

TOTAL = CPU + r"""
from stage1.core.settings import get_settings
from stage1.imports import core
from stage1.imports.rowhash import RowHasher, staging_txn, verified
from stage1.imports.service import object_source
from stage1.timeseries.fingerprint import fingerprint
from stage1.timeseries.kinds import SPECS, Kind, drop_table, ensure_table

s = get_settings().imports
# The importer's own fingerprint sums (a first dataset import); BENCH_ROWHASH=0: QuestDB's scan only.
hasher = RowHasher(list(SPECS[Kind.OHLCV].columns)) if os.environ.get("BENCH_ROWHASH") != "0" else None
if os.environ.get("BENCH_CSV_THREADS") == "0":  # pyarrow's CSV reader on the calling thread only
    import functools
    core.open_batches = functools.partial(core.open_batches, use_threads=False)
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
marks = []
def mark(name):
    marks.append((name, time.monotonic(), me_cpu(), qdb_cpu(), os.getloadavg()[0], minio_cpu()))
mark("start")
if existing == "existing":
    ensure_table(Kind.OHLCV, target, "1m")  # an existing (empty) target: the copy path
stats = core.import_file(object_source(bucket, key), Kind.OHLCV, staging,
                         prepare=lambda p: ensure_table(Kind.OHLCV, staging, "1m"),
                         senders=s.import_senders, block_size=s.import_block_bytes,
                         batch_rows=s.import_batch_rows, frame_bytes=s.import_frame_bytes, hasher=hasher)
mark("sent")
core.wait_applied(staging, timeout=600)
txn = staging_txn(staging) if stats.hashed is not None else None
mark("wal applied")
create = lambda: ensure_table(Kind.OHLCV, target, "1m")
if existing == "existing":
    create()
how = core.copy_into(staging, target, timeout=600, create=create)
core.wait_applied(target, timeout=600)
mark(how)
core.table_stats(target)
drop_table(staging)
mark("bookkeeping")
known = verified(target, stats.hashed, txn) if stats.hashed is not None and how == "renamed" else "no sums"
fp_source = "importer" if not isinstance(known, str) else "questdb"
if isinstance(known, str):
    fingerprint(target)
mark("fingerprint")
out = {"rows": stats.rows, "peak_rss_mb": hwm(), "marks": marks, "format": stats.format,
       "fingerprint_source": fp_source}
if not isinstance(known, str):  # after the marks: the importer's digest checked against QuestDB's scan
    out["fingerprint_equal"] = known == fingerprint(target)
print(json.dumps(out))
"""


def questdb_pid() -> int:
    """The local stack's QuestDB, or `STAGE1_BENCH_QDB_PID` (a private QuestDB: its CPU is ours alone)."""
    if os.environ.get("STAGE1_BENCH_QDB_PID"):
        return int(os.environ["STAGE1_BENCH_QDB_PID"])
    state = Path(os.environ.get("STAGE1_STATE_DIR") or Path(__file__).resolve().parents[2] / ".state")
    return int((state / "run" / "questdb.pid").read_text())


def minio_pid() -> int | None:
    """The local stack's MinIO (it serves the reads: its CPU is part of an import's cost here)."""
    try:
        return int((Path(__file__).resolve().parents[2] / ".state" / "run" / "minio.pid").read_text())
    except (OSError, ValueError):
        return None


def put_object(path: Path, key: str) -> None:
    from stage1.core.storage import get_s3

    get_s3().upload_file(str(path), get_settings().store.bucket, key)


def run(script: str, key: str, staging: str, target: str, pid: int, env: dict[str, str], *,
        existing: bool = False) -> dict:
    """`script` in a fresh Python (the import core alone); its JSON answer."""
    argv = [get_settings().store.bucket, key, staging, target, str(pid), "existing" if existing else "new"]
    env = {"BENCH_MINIO_PID": str(minio_pid() or ""), **env}
    out = subprocess.run([sys.executable, "-c", script, *argv],
                         capture_output=True, text=True, env={**os.environ, **env}, timeout=3600)
    if out.returncode != 0:
        raise SystemExit(f"subprocess failed: {out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def print_stages(stages: dict, rows: int) -> None:
    millions = rows / 1e6
    print(f"  {'stage':12} {'seconds':>8} {'s/M rows':>9} {'importer cpu':>13} {'QuestDB cpu':>12} "
          f"{'MinIO cpu':>10} {'load':>5}")
    total = [0.0, 0.0, 0.0, 0.0]
    for name, d in stages.items():
        if not isinstance(d, dict):
            continue
        total = [total[0] + d["seconds"], total[1] + d["cpu"], total[2] + d["qdb_cpu"], total[3] + d["minio_cpu"]]
        print(f"  {name:12} {d['seconds']:8.2f} {d['seconds'] / millions:9.3f} {d['cpu']:13.2f} "
              f"{d['qdb_cpu']:12.2f} {d['minio_cpu']:10.2f} {d['load']:5.2f}")
    print(f"  {'sum':12} {total[0]:8.2f} {total[0] / millions:9.3f} {total[1]:13.2f} {total[2]:12.2f} "
          f"{total[3]:10.2f}")


def print_total(result: dict, rows: int, indent: str = "  ") -> dict:
    """The steps of one overlapped import; returns the import phase's figures (without the
    fingerprint, which only a dataset import pays: it is printed apart)."""
    marks = result["marks"]
    print(f"{indent}{'step':14} {'seconds':>8} {'importer cpu':>13} {'QuestDB cpu':>12} {'MinIO cpu':>10} {'load':>5}")
    for (_, t0, c0, q0, _, m0), (name, t1, c1, q1, la, m1) in zip(marks, marks[1:], strict=False):
        print(f"{indent}{name:14} {t1 - t0:8.2f} {c1 - c0:13.2f} {q1 - q0:12.2f} {m1 - m0:10.2f} {la:5.2f}")
    end = next(m for m in marks if m[0] == "bookkeeping")
    wall, cpu, qcpu, mcpu = end[1] - marks[0][1], end[2] - marks[0][2], end[3] - marks[0][3], end[5] - marks[0][5]
    print(f"{indent}{'import phase':14} {wall:8.2f} {cpu:13.2f} {qcpu:12.2f} {mcpu:10.2f}  {rows / wall:,.0f} rows/s; "
          f"peak RSS {result['peak_rss_mb']:.0f} MB (the fingerprint after it: a dataset import's)")
    if result.get("fingerprint_source"):
        equal = result.get("fingerprint_equal")
        print(f"{indent}fingerprint computed by: {result['fingerprint_source']}"
              + ("" if equal is None else f" (equal to QuestDB's scan: {equal})"))
    return {"seconds": wall, "cpu": cpu, "qdb_cpu": qcpu, "rows": rows, "peak_rss_mb": result["peak_rss_mb"],
            "how": marks[-3][0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--format", choices=files.FORMATS, default="epoch")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/stage1-bench"))
    parser.add_argument("--skip-stages", action="store_true", help="only the overlapped total")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the import subprocess")
    parser.add_argument("--existing-target", action="store_true", help="the target exists (the copy path)")
    args = parser.parse_args()
    path = files.make(args.dir, args.rows, args.format)
    key = f"bench/{path.name}"
    put_object(path, key)
    env = dict(e.split("=", 1) for e in args.env)
    pid = questdb_pid()
    suffix = uuid.uuid4().hex[:8]
    names = [f"zz_stage_{n}_{suffix}" for n in ("s1", "t1", "s2", "t2")]
    print(f"{path.name}: {path.stat().st_size / 1e6:.0f} MB, {args.rows:,} rows; "
          f"load {os.getloadavg()[0]:.2f}", flush=True)
    try:
        if not args.skip_stages:
            print("stages one after the other (no overlap):", flush=True)
            print_stages(run(STAGES, key, names[0], names[1], pid, env), args.rows)
        print("import_file as the importer runs it (overlapped), then the same steps after it:", flush=True)
        result = run(TOTAL, key, names[2], names[3], pid, env, existing=args.existing_target)
        print_total(result, result["rows"])
    finally:
        for name in names:
            get_questdb().exec(f'drop table if exists "{name}"')


if __name__ == "__main__":
    main()
