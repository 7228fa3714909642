"""Where the stack lives and what it listens on: the one mutable place of the package.

Every other module reads these as `config.NAME` at call time, so `relocate()` (a private stack for
fault tests, tests/integration/private_stack.py) moves every service at once. `make up` never
relocates. Standard library only, like the whole package: it runs before any virtualenv exists.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
STATE = Path(os.environ.get("STAGE1_STATE_DIR") or REPO / ".state").resolve()
CACHE = Path(os.environ.get("STAGE1_CACHE_DIR") or Path.home() / ".cache" / "stage1").resolve()
LOGS, RUN = STATE / "logs", STATE / "run"
SECRETS_FILE = STATE / "secrets.env"
ENV_FILE = STATE / "stage1.env"  # the settings every local tool reads (STAGE1_ENV_FILE)

HOST = "127.0.0.1"
PG_PORT = 55432
QDB_HTTP, QDB_PG, QDB_MIN = 9000, 8812, 9003
MINIO_PORT, MINIO_CONSOLE = 9900, 9901
GATEWAY_PORT = 3000
QDB_VERSION = "9.3.4"
QDB_RO_USER = "stage1_ro"
QDB_URL = f"https://repo1.maven.org/maven2/org/questdb/questdb/{QDB_VERSION}/questdb-{QDB_VERSION}.jar"
MINIO_MODULE = "github.com/minio/minio"
MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
BUCKET, REGION = "stage1-uploads", "us-east-1"
WEBHOOK_ARN = "arn:minio:sqs::STAGE1:webhook"
VENV_PY = REPO / ".venv" / "bin" / "python"
SERVICES = ("postgres", "questdb", "minio", "gateway")
PORTS = {"postgres": (PG_PORT,), "questdb": (QDB_HTTP, QDB_PG, QDB_MIN), "minio": (MINIO_PORT, MINIO_CONSOLE),
         "gateway": (GATEWAY_PORT,)}
HEALTH_DEADLINE = {"postgres": 60, "questdb": 60, "minio": 30, "gateway": 30}
# Settings a relocated stack forces on its tools (the environment wins over the env file); None = inherit.
TOOL_ENV_OVERRIDES: dict[str, str] | None = None


class StackError(Exception):
    """A service could not be installed or started; message names it and why."""

    def __init__(self, service: str, reason: str):
        super().__init__(f"{service} failed to start: {reason}")
        self.service = service


def _print(msg: str) -> None:
    print(msg, flush=True)


# Progress output; replaceable (`stack.say = log.append` keeps a private stack's output quiet).
say = _print


def relocate(state: Path, ports: dict[str, int], tool_overrides: dict[str, str] | None = None) -> None:
    """Point this package at another state dir and ports: a private stack for fault tests
    (tests/integration/private_stack.py loads its own copy of local/stack.py, hence of this package).
    The tools it starts (migrations, token, gateway) then ignore the caller's STAGE1_* variables, so
    nothing of the shared stack leaks in. `make up` never calls this."""
    global STATE, LOGS, RUN, SECRETS_FILE, ENV_FILE, PG_PORT, QDB_HTTP, QDB_PG, QDB_MIN, MINIO_PORT
    global MINIO_CONSOLE, GATEWAY_PORT, PORTS, TOOL_ENV_OVERRIDES
    STATE = Path(state).resolve()
    LOGS, RUN, SECRETS_FILE, ENV_FILE = STATE / "logs", STATE / "run", STATE / "secrets.env", STATE / "stage1.env"
    PG_PORT, GATEWAY_PORT = ports["postgres"], ports["gateway"]
    QDB_HTTP, QDB_PG, QDB_MIN = ports["questdb_http"], ports["questdb_pg"], ports["questdb_min"]
    MINIO_PORT, MINIO_CONSOLE = ports["minio"], ports["minio_console"]
    PORTS = {"postgres": (PG_PORT,), "questdb": (QDB_HTTP, QDB_PG, QDB_MIN), "minio": (MINIO_PORT, MINIO_CONSOLE),
             "gateway": (GATEWAY_PORT,)}
    TOOL_ENV_OVERRIDES = dict(tool_overrides or {})
