"""Cold-start benchmark of every API function (on demand; not collected by pytest).

    .venv/bin/python tests/benchmarks/bench_cold_start.py [--runs 7] [--venv] [--only NAME ...]
    .venv/bin/python tests/benchmarks/bench_cold_start.py --importtime HealthFunction   # what the import costs

For each zip function with HttpApi routes in template.yaml: a fresh Python process imports the handler
module and serves its first request through the Mangum handler with the function's HttpApi v2 event
(tests/events/cold_start/<LogicalId>.json, or one generated from its first GET route: see
stage1_local.lambda_events). It reports the import time and the first request's time, the median of
--runs processes, against the target of TARGET_MS to the first response.

By default the process sees only what Lambda would: `python3.12 -I -S` (the runtime's interpreter, found
as `sam build` finds it: PATH, else a pyenv build) with sys.path = the function's
code + the layer built by stage1_local.package_report (no project venv, no site-packages), and the
stack's settings (STAGE1_ENV_FILE) so first requests reach the real local Postgres/QuestDB/MinIO.
`--venv` runs in the project's venv instead. Interpreter start-up is not counted (on Lambda it is the
runtime's part of INIT, before our code); a first request that opens the Postgres pool is.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "local"))

from stage1_local import package_report  # noqa: E402
from stage1_local.lambda_events import event_for  # noqa: E402
from stage1_local.sam import RUNTIME_PYTHON, runtime_python  # noqa: E402
from stage1_local.template import functions  # noqa: E402

TARGET_MS = 300.0

# Runs in the fresh process: Lambda's bootstrap imports the handler module with the code folder first
# on sys.path, then calls handler(event, context).
DRIVER = r"""
import json, sys, time, importlib
cfg = json.loads(sys.argv[1])
sys.path[:0] = cfg["path"]
class Context:
    aws_request_id = "coldstart"; function_name = cfg["function"]; memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + cfg["function"]
    def get_remaining_time_in_millis(self): return 29000
event = json.load(open(cfg["event"]))
t0, c0 = time.perf_counter(), time.process_time()
module = importlib.import_module(cfg["module"])
handler = getattr(module, cfg["attr"])
t1, c1 = time.perf_counter(), time.process_time()
response = handler(event, Context())
t2, c2 = time.perf_counter(), time.process_time()
handler(json.load(open(cfg["event"])), Context())
t3 = time.perf_counter()
print(json.dumps({"import_ms": (t1 - t0) * 1e3, "first_ms": (t2 - t1) * 1e3, "warm_ms": (t3 - t2) * 1e3,
                  "cpu_ms": (c2 - c0) * 1e3, "total_ms": (t2 - t0) * 1e3, "status": response.get("statusCode"),
                  "error": None if response.get("statusCode", 500) < 500 else str(response.get("body"))[:300]}))
"""


def api_functions(only: list[str]) -> list:
    fns = [f for f in functions().values() if f.routes and f.package_type != "Image"]
    return [f for f in sorted(fns, key=lambda f: f.name) if not only or f.name in only]


def command(fn, pkg, event_file: Path, venv: bool, extra: list[str]) -> list[str]:
    module, _, attr = fn.handler.rpartition(".")
    path = [str(fn.code_uri)] if venv else pkg.sys_path
    cfg = json.dumps({"path": path, "module": module, "attr": attr, "event": str(event_file), "function": fn.name})
    if venv:
        return [sys.executable, *extra, "-c", DRIVER, cfg]
    # The runtime's interpreter, isolated: no venv, no site-packages, only the package's paths.
    python = runtime_python()
    if python is None:
        raise SystemExit(f"no runnable {RUNTIME_PYTHON} (the functions' runtime); try --venv")
    return [str(python), "-I", "-S", "-B", *extra, "-c", DRIVER, cfg]


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    # Absolute: the function runs in a temporary folder, where a relative path would name no file and
    # the settings would fall back to localhost defaults (every Postgres request a 503 after 5 s).
    env["STAGE1_ENV_FILE"] = str(Path(env.get("STAGE1_ENV_FILE") or REPO / ".state" / "stage1.env").resolve())
    env["STAGE1_LOG_LEVEL"] = "WARNING"
    return env


def importtime(fn, pkg, event_file: Path, venv: bool, top: int = int(os.environ.get("TOP", 25))) -> None:
    proc = subprocess.run(command(fn, pkg, event_file, venv, ["-X", "importtime"]), capture_output=True,
                          text=True, env=environment(), cwd=tempfile.gettempdir())
    rows = []
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            self_us, cumulative, name = line.removeprefix("import time:").split("|")
            rows.append((int(cumulative), int(self_us), name.rstrip()))
    print(f"{fn.name}: modules by cumulative import time (µs; nested names are indented)")
    for cumulative, self_us, name in sorted(rows, reverse=True)[:top]:
        print(f"  {cumulative:>8} {self_us:>8}  {name}")
    print(proc.stdout.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--venv", action="store_true", help="run in the project venv, not the Lambda package")
    parser.add_argument("--only", nargs="*", default=[])
    parser.add_argument("--importtime", metavar="FUNCTION")
    ns = parser.parse_args()

    layers: dict = {}
    fns = api_functions([ns.importtime] if ns.importtime else ns.only)
    failed: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        results = []
        for fn in fns:
            pkg = package_report.package(fn, layers)
            event_file = Path(tmp) / f"{fn.name}.json"
            event = event_for(fn)
            event_file.write_text(json.dumps(event))
            if ns.importtime:
                importtime(fn, pkg, event_file, ns.venv)
                return 0
            runs = []
            for _ in range(ns.runs):
                proc = subprocess.run(command(fn, pkg, event_file, ns.venv, []), capture_output=True, text=True,
                                      env=environment(), cwd=tmp, timeout=120)
                if proc.returncode != 0:
                    failed.append(fn.name)
                    print(f"{fn.name}: failed\n{proc.stderr[-1500:]}", file=sys.stderr)
                    break
                runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
                if runs[-1]["error"]:  # a 5xx is a broken set-up, not a cold start: say why, once
                    print(f"{fn.name}: {runs[-1]['status']} {runs[-1]['error']}", file=sys.stderr)
            if not runs or len(runs) < ns.runs:
                continue
            med = {k: statistics.median(r[k] for r in runs) for k in ("import_ms", "first_ms", "warm_ms", "cpu_ms")}
            med["best_ms"] = min(r["total_ms"] for r in runs)
            results.append((fn.name, event["routeKey"], runs[-1]["status"], med))

    mode = "project venv" if ns.venv else f"Lambda package ({runtime_python()} -I -S, code + layer only)"
    print(f"cold start, median of {ns.runs} fresh processes each; {mode}; target {TARGET_MS:.0f} ms to the first "
          "response (import + first request)")
    head = (f"{'function':<22} {'first request':<34} {'status':>6} {'import':>7} {'first':>7} {'total':>7} "
            f"{'best':>6} {'cpu':>6} {'warm':>6}")
    print(head)
    print("-" * len(head))
    slow = []
    for name, route, status, med in results:
        total = med["import_ms"] + med["first_ms"]
        flag = "" if total <= TARGET_MS else "  SLOW"
        if flag:
            slow.append(name)
        print(f"{name:<22} {route[:34]:<34} {status!s:>6} {med['import_ms']:7.1f} {med['first_ms']:7.1f} "
              f"{total:7.1f} {med['best_ms']:6.1f} {med['cpu_ms']:6.1f} {med['warm_ms']:6.1f}{flag}")
    print("(ms, medians; total = import + first request, best = the fastest run's total, cpu = CPU time of import +\n"
          " first request (what a loaded machine does not inflate), warm = a second request in the same process)")
    if slow:
        print(f"over {TARGET_MS:.0f} ms: {', '.join(slow)}  (see --importtime NAME)")
    if failed:
        print(f"failed to import or serve: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
