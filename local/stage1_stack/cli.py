"""The commands of `python3 local/stack.py` (see its docstring and the Makefile)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from . import config as c
from .config import StackError
from .gateway import bootstrap_token, migrate, up_gateway
from .minio import up_minio
from .postgres import up_postgres
from .procs import http_ok, pid_of, port_owner, stop, tail, tcp_ok
from .questdb import up_questdb
from .secrets_env import env_vars, load_secrets, write_env_file

USAGE = """Docker-free manager for the local stack: Postgres, QuestDB, MinIO and the local gateway.
Usage: python3 local/stack.py {up [--no-gateway]|down|status|logs [service]|reset|env|restart-gateway|stop-gateway}
See docs/DEVELOPING.md for ports and settings."""


def cmd_up(args) -> int:
    s = load_secrets()
    write_env_file()
    steps = [("postgres", lambda: up_postgres(s)), ("questdb", up_questdb), ("minio", lambda: up_minio(s)),
             ("migrations", migrate), ("token", bootstrap_token)]
    if "--no-gateway" not in args:
        steps.append(("gateway", up_gateway))
    for service, fn in steps:
        try:
            fn()
        except (StackError, OSError, subprocess.SubprocessError) as e:
            c.say(f"stack: {e}" if isinstance(e, StackError) else f"stack: {service} failed to start: {e}")
            lines = tail(c.LOGS / f"{service}.log", 20)
            if lines:
                c.say(f"--- last {len(lines)} lines of {c.LOGS / f'{service}.log'} ---\n" + "\n".join(lines))
            return 1
    return 0


def cmd_down(_args) -> int:
    for service in reversed(c.SERVICES):
        stop(service)
    return 0


def cmd_stop_gateway(_args) -> int:
    stop("gateway")
    return 0


def cmd_restart_gateway(args) -> int:
    """Stop the gateway and start it on the current code (it imports the functions once)."""
    stop("gateway")
    return cmd_up([*args])


def cmd_status(_args) -> int:
    h = c.HOST
    checks = {"postgres": lambda: tcp_ok(c.PG_PORT),
              "gateway": lambda: http_ok(f"http://{h}:{c.GATEWAY_PORT}/api/health"),
              "questdb": lambda: http_ok(f"http://{h}:{c.QDB_HTTP}/exec?query=select%201"),
              "minio": lambda: http_ok(f"http://{h}:{c.MINIO_PORT}/minio/health/live")}
    for service in c.SERVICES:
        pid, port = pid_of(service), c.PORTS[service][0]
        if pid:
            c.say(f"{service:9} running  pid {pid:<7} port {port:<6} {'healthy' if checks[service]() else 'UNHEALTHY'}")
        else:
            owner = port_owner(port)
            c.say(f"{service:9} stopped  pid -       port {port}" + (f"  (port held by {owner})" if owner else ""))
    return 0


def cmd_logs(args) -> int:
    services = args or c.SERVICES
    for service in services:
        if service not in c.SERVICES:
            c.say(f"stack: unknown service {service!r} (one of {', '.join(c.SERVICES)})")
            return 2
        path = c.LOGS / f"{service}.log"
        c.say(f"==> {path} <==")
        c.say("\n".join(tail(path, 100)) or "(no log yet)")
    return 0


def cmd_reset(args) -> int:
    cmd_down(args)
    if c.STATE in (Path("/"), Path.home(), c.REPO) or not c.STATE.exists():
        return 0  # never wipe something that is not a dedicated state dir
    pg_link = c.STATE / "postgres"
    if pg_link.is_symlink():  # Postgres data kept outside the state dir (see postgres.pg_paths)
        shutil.rmtree(pg_link.resolve().parent, ignore_errors=True)
    for entry in c.STATE.iterdir():
        shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    c.say(f"reset: wiped {c.STATE} (install cache {c.CACHE} kept)")
    return 0


def cmd_env(_args) -> int:
    for key, value in env_vars().items():
        print(f"{key}={value}")
    return 0


COMMANDS = {"up": cmd_up, "down": cmd_down, "status": cmd_status, "logs": cmd_logs, "reset": cmd_reset,
            "env": cmd_env, "restart-gateway": cmd_restart_gateway, "stop-gateway": cmd_stop_gateway}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(USAGE, file=sys.stderr)
        return 2
    return COMMANDS[argv[0]](argv[1:])
