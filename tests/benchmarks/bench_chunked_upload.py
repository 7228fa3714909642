"""Chunked-upload benchmark (on demand, not collected by pytest): end to end, from a CSV file on the
client's disk until every row is queryable (WAL applied, the job COMPLETED / the rows counted), in
one run:

1. chunked: the client cuts the file at row boundaries into `--chunk-mb` chunks and PUTs them in
   parallel (`--concurrency`); each chunk's ObjectCreated event (MinIO → the gateway on :3000) imports
   it while later chunks are still uploading; the job commits once the last one is in.
2. one object: the same file as one upload (multipart above 64 MiB), imported after it arrived.
3. QuestDB's `POST /imp` of the same file (streamed from disk) into a new table, WAL applied, counted.
4. fan-out simulation (the AWS scaling model): the file cut into chunk files on local disk, then N
   importer processes (`--fanout 1,2,4`) importing them in parallel with `imports.core.import_file`
   into ONE WAL+DEDUP table of one QuestDB; rows/s against N.

    STAGE1_ENV_FILE=.state/stage1.env .venv/bin/python tests/benchmarks/bench_chunked_upload.py \
        [--rows 1000000] [--chunk-mb 8] [--concurrency 4] [--fanout 1,2,4] [--skip-fanout] [--repeat 2] [--keep]

The 1-minute load average is printed beside every figure (2 shared cores: other people's tests move
them). The gateway on :3000 must run the chunked-upload code (`python3 local/stack.py restart-gateway`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stage1.core.questdb import get_questdb  # noqa: E402
from stage1.core.settings import get_settings  # noqa: E402

HEADER = b"timestamp_unix,open,high,low,close,volume\n"


def make_csv(path: Path, rows: int) -> None:
    """The OHLCV CSV of the import benchmark (bench_import_files, else bench_import's older helper)."""
    try:
        from bench_import_files import make_epoch_csv as make  # type: ignore[import-not-found]
    except ImportError:
        from bench_import import make_csv as make  # type: ignore[attr-defined,no-redef]
    make(path, rows)


def load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def token() -> str:
    env = Path(os.environ.get("STAGE1_ENV_FILE", ".state/stage1.env"))
    for line in env.read_text().splitlines():
        if line.startswith("STAGE1_TOKEN="):
            return line.split("=", 1)[1].strip()
    return os.environ.get("STAGE1_TOKEN", "")


def count(table: str) -> int:
    return int(get_questdb().exec(f"select count() from {table}", timeout=60).dataset[0][0])


def drop(table: str) -> None:
    get_questdb().exec(f"drop table if exists {table}")


def wait_job(api: httpx.Client, job_id: str, timeout: float = 1800) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = api.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(job)
        time.sleep(0.05)


def via_client(path: Path, table: str, rows: int, **upload: object) -> dict:
    from stage1_client import Client

    url = get_settings().service.gateway_url
    started, at = time.monotonic(), load()
    with Client(url, token()) as c:
        up = c.uploads.upload(path, kind="ohlcv", measurement=table, resume=False, **upload)
        sent = time.monotonic() - started
        job = wait_job(c.http, up.job_id)
    seconds = time.monotonic() - started
    assert job["status"] == "COMPLETED", job
    n = count(table)
    assert n == rows, (n, rows)
    return {"seconds": seconds, "upload_s": sent, "load": at, "chunks": up.chunks, "parts": up.parts}


def imp(path: Path, table: str, rows: int) -> dict:
    from stage1.imports.core import wait_applied

    qdb = get_settings().questdb.qdb_http_url
    started, at = time.monotonic(), load()
    with open(path, "rb") as f:
        r = httpx.post(f"{qdb}/imp", params={"name": table, "fmt": "json"}, files={"data": (path.name, f)},
                       timeout=1800)
    r.raise_for_status()
    wait_applied(table)
    n = count(table)
    assert n == rows, (n, rows)
    return {"seconds": time.monotonic() - started, "load": at}


# ---------------------------------------------------------------- fan-out simulation
def cut_files(path: Path, directory: Path, pieces: int) -> list[Path]:
    """The file as `pieces` chunk files (row boundaries, each with the header), as the client cuts it."""
    from stage1_client.upload_chunks import plan

    p = plan(path, path.stat().st_size // pieces + 1)
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    with open(path, "rb") as src:
        header = src.read(p.header)
        for i, (offset, length) in enumerate(p.ranges, start=1):
            dst = directory / f"chunk-{i:06d}.csv"
            if not (dst.exists() and dst.stat().st_size == p.header + length):
                with open(dst, "wb") as f:
                    f.write(header)
                    src.seek(offset)
                    left = length
                    while left:
                        data = src.read(min(8 << 20, left))
                        f.write(data)
                        left -= len(data)
            out.append(dst)
    return out


def worker(table: str, files: list[str]) -> None:
    """One importer process: its chunk files into the shared table, one after the other."""
    import pyarrow as pa

    from stage1.imports.formats import Source
    from stage1.imports.service import load as import_with_settings
    from stage1.timeseries.kinds import Kind

    for name in files:
        size = os.path.getsize(name)
        source = Source(lambda n=name: pa.memory_map(n), size, lambda n=name: pa.input_stream(n))
        import_with_settings(source, Kind.OHLCV, table, lambda *_: None)


def fanout(chunks: list[Path], n: int, rows: int) -> dict:
    from stage1.imports.core import wait_applied
    from stage1.timeseries.kinds import Kind, ensure_table

    table = f"zz_bench_fan{n}_{uuid.uuid4().hex[:8]}"
    ensure_table(Kind.OHLCV, table, "1m")
    shares = [[str(c) for c in chunks[i::n]] for i in range(n)]
    started, at = time.monotonic(), load()
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", table, *share]) for share in shares]
    codes = [p.wait() for p in procs]
    assert codes == [0] * n, codes
    wait_applied(table)
    seconds = time.monotonic() - started
    got = count(table)
    drop(table)
    assert got == rows, (got, rows)
    return {"seconds": seconds, "load": at}


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3:])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--chunk-mb", type=float, default=8.0)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--fanout", default="1,2,4")
    ap.add_argument("--fanout-chunks", type=int, default=8)
    ap.add_argument("--skip-fanout", action="store_true")
    ap.add_argument("--dir", default="/tmp/stage1-bench-chunks")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each path, interleaved; the best is shown")
    ap.add_argument("--keep", action="store_true", help="keep the tables")
    args = ap.parse_args()

    directory = Path(args.dir)
    path = directory / f"ohlcv_{args.rows}.csv"
    make_csv(path, args.rows)
    size = path.stat().st_size
    print(f"{args.rows:,} rows, {size / 1e6:.0f} MB; load {load():.2f}; chunks of {args.chunk_mb} MiB, "
          f"{args.concurrency} PUTs at once; importer_concurrency on the gateway: see its settings", flush=True)
    results: dict[str, dict] = {}
    chunk = int(args.chunk_mb * 1024**2)
    runs = {
        "chunked upload (parallel chunks)": lambda t: via_client(
            path, t, args.rows, chunk_bytes=chunk, chunk_threshold=0, concurrency=args.concurrency),
        "one-object upload": lambda t: via_client(path, t, args.rows, chunk_bytes=0, concurrency=args.concurrency),
        "QuestDB /imp": lambda t: imp(path, t, args.rows),
    }
    for attempt in range(args.repeat):  # interleaved, the best of each kept (a shared, loaded machine)
        for name, run in runs.items():
            table = f"zz_bench_{uuid.uuid4().hex[:10]}"
            try:
                r = run(table)
            finally:
                if not args.keep:
                    drop(table)
            print(f"  run {attempt + 1} {name}: {r['seconds']:.2f} s (load {r['load']:.2f})", flush=True)
            if name not in results or r["seconds"] < results[name]["seconds"]:
                results[name] = r
    imp_rate = args.rows / results["QuestDB /imp"]["seconds"]
    print("\n| path | load | seconds (upload part) | rows/s | vs /imp |\n|---|---|---|---|---|")
    for name, r in results.items():
        rate = args.rows / r["seconds"]
        pieces = f"{r['chunks']} chunks" if r.get("chunks") else f"{r.get('parts')} parts"
        extra = f" ({r['upload_s']:.2f} s sending, {pieces})" if "upload_s" in r else ""
        print(f"| {name} | {r['load']:.2f} | {r['seconds']:.2f}{extra} | {rate:,.0f} | {rate / imp_rate:.2f} |")
    if args.skip_fanout:
        return
    chunks = cut_files(path, directory / f"chunks_{args.rows}_{args.fanout_chunks}", args.fanout_chunks)
    print(f"\nfan-out: {len(chunks)} chunk files, N importer processes into one table (2 ILP senders each)\n"
          "| N | load | seconds | rows/s | × N=1 |\n|---|---|---|---|---|")
    base = None
    for n in (int(x) for x in args.fanout.split(",")):
        r = fanout(chunks, n, args.rows)
        rate = args.rows / r["seconds"]
        base = base or rate
        print(f"| {n} | {r['load']:.2f} | {r['seconds']:.2f} | {rate:,.0f} | {rate / base:.2f} |", flush=True)


if __name__ == "__main__":
    main()
