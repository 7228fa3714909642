"""A private Stage1 stack for fault tests: Postgres, QuestDB, MinIO and a gateway on free ports in a
temp dir, started with the very functions `make up` uses (local/stack.py, loaded as a separate
module instance and relocated there). Fault tests kill, freeze and restart these instances only;
the shared stack (55432/9000/8812/9900/3000) is never touched.

One stack per test session (`private_stack` fixture; shared by every test_faults_*.py module),
torn down at session end: processes stopped, the temp dir and Postgres' data removed.
Every wait is bounded. MinIO is included when its build is in the install cache (`make up` builds
it); tests that need it skip otherwise.

`STAGE1_FAULTS_CODE_DIR=<another checkout>` runs the private migrations, token and gateway on that
checkout's code (e.g. a `git worktree` of an older commit) while the tests stay these: the way to
see a fault test fail on the code before a fix.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import httpx
import psycopg
import pytest
from botocore.config import Config
from client_support import write_ohlcv_bytes
from imports_support import post_file

REPO = Path(__file__).resolve().parents[2]
# Settings the private gateway runs with (the environment wins over its env file). A short lease and
# sweep interval make the sweeper's recovery observable within a test; everything else is the default.
GATEWAY_OVERRIDES = {"STAGE1_JOB_LEASE_SECONDS": "15", "STAGE1_SWEEP_INTERVAL_SECONDS": "1",
                     "STAGE1_LOG_LEVEL": "INFO"}
LOGS_KEPT = Path(tempfile.gettempdir()) / "stage1-faults-logs"  # the last session's service logs
PORT_NAMES = ("postgres", "questdb_http", "questdb_pg", "questdb_min", "minio", "minio_console", "gateway")


def free_ports(n: int) -> list[int]:
    """n distinct free loopback ports (held open together so none repeats)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def load_stack_module() -> ModuleType:
    """A fresh instance of local/stack.py: relocating it leaves any other instance alone."""
    spec = importlib.util.spec_from_file_location(f"stage1_private_stack_{uuid.uuid4().hex[:8]}",
                                                  REPO / "local" / "stack.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # before it runs, as `import` does: stack.py finds itself there
    spec.loader.exec_module(module)
    return module


def wait_until(check, timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class PrivateStack:
    def __init__(self, root: Path, with_minio: bool = True) -> None:
        self.root = root
        self.stack = load_stack_module()
        self.ports = dict(zip(PORT_NAMES, free_ports(len(PORT_NAMES)), strict=True))
        overrides = dict(GATEWAY_OVERRIDES)
        code = os.environ.get("STAGE1_FAULTS_CODE_DIR")
        if code:  # that checkout's package and local tools first on the path (before the editable install)
            self.stack.REPO = Path(code).resolve()
            paths = ("layers/stage1", "layers/client", "local")
            overrides["PYTHONPATH"] = ":".join(str(self.stack.REPO / d) for d in paths)
        self.stack.relocate(root / "state", self.ports, overrides)
        self.stack.VENV_PY = Path(sys.executable)  # the interpreter running the tests (the project's venv)
        self.log: list[str] = []
        self.stack.say = self.log.append  # keep pytest's output clean; shown when the stack fails to start
        binary = self.stack.CACHE / "bin" / f"minio-{self.stack.MINIO_VERSION}"
        self.has_minio = with_minio and binary.exists()
        self.url = f"http://127.0.0.1:{self.ports['gateway']}"
        self.timings: dict[str, float] = {}
        self.token = ""
        self._qdb = httpx.Client(base_url=f"http://127.0.0.1:{self.ports['questdb_http']}", timeout=30)

    # ------------------------------------------------------------ lifecycle
    def _timed(self, name: str, fn) -> None:
        started = time.monotonic()
        fn()
        self.timings[name] = round(time.monotonic() - started, 2)

    def start(self) -> None:
        s = self.stack
        secrets_ = s.load_secrets()
        s.write_env_file()
        self._timed("postgres", lambda: s.up_postgres(secrets_))
        self._timed("questdb", s.up_questdb)
        if self.has_minio:
            self._timed("minio", lambda: s.up_minio(secrets_))
        self._timed("migrations", s.migrate)
        self._timed("token", s.bootstrap_token)
        self.token = s.load_secrets()["STAGE1_TOKEN"]
        self._timed("gateway", s.up_gateway)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._qdb.close()
        for service in ("gateway", "minio", "questdb", "postgres"):
            with contextlib.suppress(Exception):
                pid = self.stack.pid_of(service)
                if pid:
                    os.kill(pid, signal.SIGCONT)  # a frozen process would not stop
                self.stack.stop(service, timeout=10)
        # The services' logs outlive the stack (a failed fault test is read from the gateway's log).
        shutil.rmtree(LOGS_KEPT, ignore_errors=True)
        with contextlib.suppress(Exception):
            shutil.copytree(self.stack.LOGS, LOGS_KEPT)
        with contextlib.suppress(Exception):
            self.stack.cmd_reset([])  # removes the state dir's content and Postgres' data outside it
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def env(self) -> dict[str, str]:
        """The settings the private gateway reads (its env file)."""
        return self.stack.env_vars()

    def logs(self, service: str, n: int = 60) -> str:
        return "\n".join(self.stack.tail(self.stack.LOGS / f"{service}.log", n))

    def log_about(self, text: str, service: str = "gateway", context: int = 30) -> str:
        """The log lines around each mention of `text` (e.g. a 500's request_id), for failure messages."""
        lines = self.stack.tail(self.stack.LOGS / f"{service}.log", 100_000)
        hits = [i for i, line in enumerate(lines) if text and text in line]
        return "\n".join("\n".join(lines[max(0, i - 2):i + context]) for i in hits[:3]) or f"({text!r} not in the log)"

    def peak_rss_mb(self, service: str = "gateway") -> float:
        """The service process's peak resident memory so far (VmHWM), in MB."""
        for line in Path(f"/proc/{self.pid(service)}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def pid(self, service: str) -> int:
        pid = self.stack.pid_of(service)
        assert pid, f"private {service} is not running"
        return pid

    # ------------------------------------------------------------ faults
    def kill_questdb(self) -> None:
        """SIGKILL: a crash, nothing flushed, no goodbye to clients."""
        pid = self.pid("questdb")
        os.killpg(pid, signal.SIGKILL)
        wait_until(lambda: not self.stack.alive(pid), 10, "QuestDB to die")
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        (self.stack.RUN / "questdb.pid").unlink(missing_ok=True)

    def start_questdb(self) -> None:
        """Start QuestDB again on the same data dir (a restart after a crash)."""
        wait_until(lambda: not any(self.stack.port_owner(p) for p in self.stack.PORTS["questdb"]), 15,
                   "QuestDB's ports to be free")
        self.stack.up_questdb()

    @contextlib.contextmanager
    def questdb_frozen(self) -> Iterator[None]:
        """SIGSTOP: the kernel still accepts connections, the server answers nothing."""
        pid = self.pid("questdb")
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)

    def stop_postgres(self) -> None:
        self.stack.stop("postgres", timeout=20)

    def start_postgres(self) -> None:
        self.stack.up_postgres(self.stack.load_secrets())

    def restart_postgres(self) -> None:
        self.stop_postgres()
        self.start_postgres()

    def stop_minio(self) -> None:
        self.stack.stop("minio", timeout=10)

    def start_minio(self) -> None:
        self.stack.up_minio(self.stack.load_secrets())

    def set_webhook(self, enabled: bool) -> None:
        """Apply (or remove) the bucket's ObjectCreated notification: without it events are lost."""
        s, sec = self.stack, self.stack.load_secrets()
        if enabled:
            s.minio_bucket(sec["STAGE1_S3_ACCESS_KEY"], sec["STAGE1_S3_SECRET_KEY"])
            return
        empty = b'<NotificationConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></NotificationConfiguration>'
        status, body = s.sigv4_request("PUT", f"/{s.BUCKET}", "notification", empty,
                                       sec["STAGE1_S3_ACCESS_KEY"], sec["STAGE1_S3_SECRET_KEY"])
        assert status == 200, body

    # ------------------------------------------------------------ clients
    def client(self, timeout: float = 60) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-Stage1-Token": self.token}, timeout=timeout)

    def qdb(self, sql: str, timeout: float = 30) -> list[list[Any]]:
        """Rows of a QuestDB query, straight to the private QuestDB's HTTP /exec."""
        r = self._qdb.get("/exec", params={"query": sql}, timeout=timeout)
        assert r.status_code == 200, r.text
        return r.json().get("dataset", [])

    def qdb_ready(self) -> bool:
        try:
            return self._qdb.get("/exec", params={"query": "select 1"}, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def table_exists(self, table: str) -> bool:
        return bool(self.qdb(f"select table_name from tables() where table_name = '{table}'"))

    def count(self, table: str) -> int:
        return int(self.qdb(f'select count() from "{table}"')[0][0]) if self.table_exists(table) else 0

    def pg(self) -> psycopg.Connection:
        return psycopg.connect(self.env["STAGE1_PG_DSN"], autocommit=True, connect_timeout=5)

    def s3(self):
        env = self.env
        config = Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required")
        return boto3.client("s3", endpoint_url=env["STAGE1_S3_ENDPOINT"], aws_access_key_id=env["STAGE1_S3_ACCESS_KEY"],
                            aws_secret_access_key=env["STAGE1_S3_SECRET_KEY"], region_name=env["STAGE1_S3_REGION"],
                            config=config)


_lock = threading.Lock()
_shared: dict[str, PrivateStack] = {}


def _stack_for_session(config: pytest.Config) -> PrivateStack:
    with _lock:
        if "stack" not in _shared:
            started = time.monotonic()
            stack = PrivateStack(Path(tempfile.mkdtemp(prefix="stage1-faults-")))
            config.add_cleanup(stack.close)  # once, at the end of the session
            try:
                stack.start()
            except BaseException as exc:
                details = "\n".join(stack.log[-20:])
                for service in ("postgres", "questdb", "minio", "gateway"):
                    details += f"\n--- {service} log ---\n{stack.logs(service, 20)}"
                raise RuntimeError(f"the private stack did not start: {exc}\n{details}") from exc
            stack.timings["total"] = round(time.monotonic() - started, 2)
            _shared["stack"] = stack
        return _shared["stack"]


@pytest.fixture(scope="module", name="pstack")
def pstack_fixture(request: pytest.FixtureRequest) -> PrivateStack:
    """`pstack`: the session's private stack (started on first use). A test module imports
    `pstack_fixture, pclient_fixture` to use the fixtures `pstack` and `pclient`."""
    stack = _stack_for_session(request.config)
    yield stack
    # A test that left QuestDB dead or frozen must not break the next module.
    with contextlib.suppress(Exception):
        os.kill(stack.pid("questdb"), signal.SIGCONT)
    if not stack.qdb_ready() and stack.stack.pid_of("questdb") is None:
        stack.start_questdb()


@pytest.fixture(name="pclient")
def pclient_fixture(pstack: PrivateStack) -> Iterator[httpx.Client]:
    """`pclient`: httpx against the private gateway with its bootstrap token (read, write, admin)."""
    with pstack.client() as c:
        yield c


# ---------------------------------------------------------------- client-side helpers of the fault tests
# Bytes per row of client_support.write_ohlcv_bytes (fixed width while timestamps keep 10 digits).
OHLCV_ROW_BYTES = 52


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def make_dataset(client: httpx.Client, slug: str) -> dict[str, Any]:
    r = client.post("/api/datasets", json={"dataset_slug": slug, "symbol": "FLT", "granularity": "1m"})
    assert r.status_code in (200, 201), r.text
    return r.json()


def ohlcv_file(path: Path, rows: int) -> tuple[Path, int]:
    """An OHLCV CSV of `rows` rows (one per second); returns (path, exact row count)."""
    n = write_ohlcv_bytes(path, rows * OHLCV_ROW_BYTES)
    return path, n


def upload_to_dataset(client: httpx.Client, dataset_id: str, path: Path) -> dict[str, Any]:
    """Start a dataset upload and send the file to the presigned URL (single POST, below the multipart
    threshold); the object store's event then starts the import."""
    data = path.read_bytes()
    r = client.post(f"/api/datasets/{dataset_id}/uploads", json={"filename": path.name, "size": len(data),
                                                                 "kind": "ohlcv"})
    assert r.status_code == 201, r.text
    up = r.json()
    assert not up["multipart"], "keep fault-test files below the multipart threshold"
    post_file(up, data, path.name)
    return up


def assert_clean_error(r: httpx.Response, statuses: tuple[int, ...] = (503,)) -> dict[str, Any]:
    """A backing-service failure: the documented envelope and status, never a bare 500."""
    assert r.status_code in statuses, f"{r.status_code}: {r.text[:500]}"
    body = r.json()
    assert set(body) >= {"error", "details"} and isinstance(body["error"], str) and body["error"], body
    return body


def job_now(client: httpx.Client, job_id: str) -> dict[str, Any]:
    r = client.get(f"/api/jobs/{job_id}", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def wait_progress(client: httpx.Client, job_id: str, timeout: float = 120) -> dict[str, Any]:
    """Poll until the job is RUNNING with progress > 0 (or has ended: the caller decides)."""
    deadline = time.monotonic() + timeout
    while True:
        job = job_now(client, job_id)
        if job["status"] in ("COMPLETED", "FAILED", "CANCELLED") or (job["status"] == "RUNNING" and job["progress"]):
            return job
        assert time.monotonic() < deadline, f"job never made progress in {timeout}s: {job}"
        time.sleep(0.05)


def wait_job_status(client: httpx.Client, job_id: str, timeout: float) -> dict[str, Any]:
    """wait_job, but tolerant of the gateway answering 503 for a moment (a backing service restarting)."""
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"/api/jobs/{job_id}", timeout=10)
        if r.status_code == 200 and r.json()["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
            return r.json()
        assert time.monotonic() < deadline, f"job not terminal after {timeout}s: {r.status_code} {r.text[:400]}"
        time.sleep(0.25)



START, HOUR = 1_704_067_200, 3600  # the first bar and the step of the predictions the fault tests write


def predictions_csv(n: int, folds: int = 4) -> str:
    """A run's predictions as CSV: `n` hourly rows over `folds` folds, one threshold column."""
    lines = ["timestamp,bar_index,fold_number,prediction,target,thr_0"]
    lines += [f"{START + i * HOUR},{i},{i % folds},{(i % 1000) / 1000},{i % 2},{i % 3}" for i in range(n)]
    return "\n".join(lines) + "\n"


def settled_runs(stack: PrivateStack, run_ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    """The runs' rows (those that exist) once none is PENDING/RUNNING any more (the sweeper settles
    stale ones); fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        with stack.pg() as conn:
            rows = conn.execute("select run_id::text, status, error, prediction_rows, prediction_measurement "
                                "from walkforward_runs where run_id = any(%s::uuid[])", (run_ids,)).fetchall()
        found = {r[0]: {"status": r[1], "error": r[2], "rows": r[3], "table": r[4]} for r in rows}
        unsettled = {k: v for k, v in found.items() if v["status"] not in ("COMPLETED", "FAILED")}
        if not unsettled:
            return found
        assert time.monotonic() < deadline, f"runs still unsettled after {timeout}s: {unsettled}"
        time.sleep(0.5)
