"""What QuestDB itself spends to ingest ILP, by transport and table layout (on demand; not collected).

    .venv/bin/python tests/benchmarks/bench_ilp_transport.py [--rows 4000000] [--rounds 2]
        [--variants http,tcp,http:year,http:day,http:nodedup]

The import's speed on 2 cores is bounded by QuestDB's CPU per million ILP rows (docs/imports.md
"Against the targets"). This isolates that cost from everything of ours: it starts a private QuestDB
(the stack's pinned jar, its own data folder and free ports, ILP over TCP enabled, which the stack's
server keeps off) so its CPU is the benchmark's alone; builds one OHLCV DataFrame in memory; sends it
with the questdb client in requests of `--batch` rows (as the importer does) into a fresh WAL table
per variant; waits until every row is applied; and prints per variant the wall time, QuestDB's CPU
seconds per million rows, and where in QuestDB they went (its threads by name: the network threads
parse ILP and write the WAL, the write/WAL-apply threads apply it, the logging thread logs).

A variant is `transport[:partition][:nodedup]`: `http` (ILP over HTTP, one transaction per request:
what the importer uses) or `tcp` (ILP over TCP: pipelined, no per-request answer); the partition is
`month` (what `timeseries.kinds.partition_for` gives 1-minute bars) unless given; `nodedup` drops
`DEDUP UPSERT KEYS`. Rounds alternate the variants, so a slow minute of the machine hits them alike.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "local"))

from stage1_stack.questdb import java_bin, questdb_jar  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def threads(pid: int) -> dict[str, float]:
    """CPU seconds of each thread of `pid`, summed by thread name (its numbers dropped)."""
    out: dict[str, float] = defaultdict(float)
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip().rstrip("_0123456789")
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        out[name] += (int(fields[11]) + int(fields[12])) / TICK
    return out


class PrivateQuestDB:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="stage1-ilp-bench-"))
        self.http, self.tcp = free_port(), free_port()
        (self.root / "conf").mkdir()
        (self.root / "conf" / "server.conf").write_text("\n".join([
            f"http.bind.to=127.0.0.1:{self.http}", f"http.min.net.bind.to=127.0.0.1:{free_port()}",
            f"pg.net.bind.to=127.0.0.1:{free_port()}", "line.tcp.enabled=true",
            f"line.tcp.net.bind.to=127.0.0.1:{self.tcp}", "line.udp.enabled=false", "telemetry.enabled=false",
            "cairo.wal.enabled.default=true", ""]))

    def __enter__(self) -> PrivateQuestDB:
        self.proc = subprocess.Popen(  # noqa: S603 - our own java and jar
            [java_bin(), "-Xms256m", "-Xmx2g", "-p", str(questdb_jar()), "-m", "io.questdb/io.questdb.ServerMain",
             "-d", str(self.root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.exec("select 1")
                return self
            except httpx.HTTPError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("the private QuestDB did not start") from None
                time.sleep(0.3)

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        subprocess.run(["rm", "-rf", str(self.root)], check=False)  # noqa: S603,S607

    def exec(self, sql: str) -> list[list[object]]:
        r = httpx.get(f"http://127.0.0.1:{self.http}/exec", params={"query": sql}, timeout=60)
        r.raise_for_status()
        return r.json().get("dataset", [])


def frame(rows: int):  # noqa: ANN201 - pandas is imported here only
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1)
    o = 100 + rng.random(rows)
    ts = (1_500_000_000 + 60 * np.arange(rows, dtype="int64")) * 1_000_000
    return pd.DataFrame({"timestamp": pd.to_datetime(ts, unit="us"), "open": o, "high": o + 1, "low": o - 1,
                         "close": o + 0.5, "volume": rng.random(rows) * 1000})


def run(q: PrivateQuestDB, df, variant: str, batch: int) -> dict[str, object]:  # noqa: ANN001
    from questdb import Sender

    transport, *rest = variant.split(":")
    partition = next((r for r in rest if r in ("day", "month", "year")), "month")
    dedup = "nodedup" not in rest
    table = f"ilp_{transport}_{partition}_{'d' if dedup else 'n'}_{time.time_ns() % 10**9}"
    q.exec(f"create table {table} (timestamp timestamp, open double, high double, low double, close double, "
           f"volume double) timestamp(timestamp) partition by {partition} wal"
           + (" dedup upsert keys(timestamp)" if dedup else ""))
    conf = (f"http::addr=127.0.0.1:{q.http};" if transport == "http" else f"tcp::addr=127.0.0.1:{q.tcp};")
    before, t0, mine = threads(q.proc.pid), time.perf_counter(), time.process_time()
    with Sender.from_conf(conf + "auto_flush=off;") as sender:
        for i in range(0, len(df), batch):
            sender.dataframe(df.iloc[i:i + batch], table_name=table, at="timestamp")
            sender.flush()
    sent = time.perf_counter() - t0
    while True:  # every row applied: counted, and no WAL rows pending
        count = q.exec(f"select count() from {table}")[0][0]
        pending = q.exec(f"select wal_pending_row_count from tables() where table_name = '{table}'")
        if count == len(df) and pending and pending[0][0] == 0:
            break
        time.sleep(0.05)
    wall, after = time.perf_counter() - t0, threads(q.proc.pid)
    used = {k: after[k] - before.get(k, 0.0) for k in after}
    q.exec(f"drop table {table}")
    return {"variant": variant, "wall": wall, "sent": sent, "client_cpu": time.process_time() - mine,
            "qdb_cpu": sum(used.values()), "by_thread": used}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=4_000_000)
    ap.add_argument("--batch", type=int, default=60_000, help="rows per request (the importer's CSV batches)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--variants", default="http,tcp,http:year,http:day,http:nodedup")
    args = ap.parse_args()
    variants = args.variants.split(",")
    df = frame(args.rows)
    print(f"load {Path('/proc/loadavg').read_text().split()[0]}; {args.rows:,} rows, {args.batch:,} per request; "
          "QuestDB CPU is per million rows")
    with PrivateQuestDB() as q:
        for transport in sorted({v.split(":")[0] for v in variants}):  # the JVM's JIT warms up on each path
            run(q, df.iloc[: min(len(df), 1_000_000)], transport, args.batch)
        for r in range(args.rounds):
            for variant in variants:
                got = run(q, df, variant, args.batch)
                per_m = 1e6 / args.rows
                groups = defaultdict(float)
                for name, sec in got["by_thread"].items():
                    key = ("ILP parse + WAL write" if name.startswith(("shared-network", "ilp", "line"))
                           else "WAL apply" if name.startswith(("shared-write", "wal-apply"))
                           else "JIT + GC" if name.startswith(("C1", "C2", "G1", "GC", "VM"))
                           else "logging" if name.startswith("logging") else "other")
                    groups[key] += sec
                split = ", ".join(f"{k} {v * per_m:.2f}" for k, v in sorted(groups.items(), key=lambda kv: -kv[1]))
                print(f"round {r + 1}  {variant:14s} wall {got['wall']:5.2f} s (sent {got['sent']:5.2f})  "
                      f"{args.rows / got['wall']:>10,.0f} rows/s  QuestDB {got['qdb_cpu'] * per_m:.2f} CPU s/M "
                      f"({split})  client {got['client_cpu'] * per_m:.2f}", flush=True)


if __name__ == "__main__":
    main()
