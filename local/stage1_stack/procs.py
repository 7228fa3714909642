"""Process control: detached services with pid files, health checks, idempotent start, stop."""
from __future__ import annotations

import contextlib
import datetime
import glob
import os
import pwd
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from . import config as c
from .config import StackError


def run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def tail(path: Path, n: int) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-n:]
    except FileNotFoundError:
        return []


def pw_group(user: str) -> int:
    return pwd.getpwnam(user).pw_gid


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"  # zombie = dead
    except (OSError, IndexError):
        return False


def pid_of(service: str) -> int | None:
    """Pid from the pid file if that process is alive and is still our service (pids get reused)."""
    try:
        pid = int((c.RUN / f"{service}.pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, ValueError):
        return None
    ours = service in cmdline or (service == "questdb" and "io.questdb" in cmdline)
    return pid if ours and alive(pid) else None


def port_owner(port: int) -> str | None:
    """Who listens on 127.0.0.1/0.0.0.0:port, as 'pid N (cmd)', or 'unknown'; None if free."""
    with socket.socket() as s:
        s.settimeout(1)
        if s.connect_ex((c.HOST, port)) != 0:
            return None
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:  # 0A = LISTEN
                inodes.add(f"socket:[{f[9]}]")
    for fd in glob.glob("/proc/[0-9]*/fd/*"):
        try:
            if os.readlink(fd) in inodes:
                pid = fd.split("/")[2]
                return f"pid {pid} ({Path(f'/proc/{pid}/comm').read_text().strip()})"
        except OSError:
            continue
    return "unknown"


def spawn(service: str, cmd: list[str], env: dict | None = None, user: str | None = None, cwd: str = "/") -> int:
    """Start detached in its own session so it outlives `make up`; output goes to its log."""
    c.LOGS.mkdir(parents=True, exist_ok=True)
    c.RUN.mkdir(parents=True, exist_ok=True)
    with open(c.LOGS / f"{service}.log", "ab") as log:
        log.write(f"\n=== stack.py start {datetime.datetime.now().isoformat()} ===\n".encode())
        log.flush()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=cwd,
                                env=env, start_new_session=True, user=user, group=user and pw_group(user),
                                extra_groups=[] if user else None)
    (c.RUN / f"{service}.pid").write_text(str(proc.pid))
    return proc.pid


def stop(service: str, timeout: float = 20) -> None:
    pid = pid_of(service)
    if pid is None:
        (c.RUN / f"{service}.pid").unlink(missing_ok=True)
        c.say(f"{service:9} not running")
        return
    # Postgres: SIGINT to the postmaster is "fast shutdown" (SIGTERM would wait for clients).
    if service == "postgres":
        os.kill(pid, signal.SIGINT)
    else:
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    how = "stopped"
    if alive(pid):
        os.killpg(pid, signal.SIGKILL)
        how = f"killed after {timeout:.0f}s"
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap if we happen to be the parent
    (c.RUN / f"{service}.pid").unlink(missing_ok=True)
    c.say(f"{service:9} {how} (pid {pid})")


def wait_healthy(service: str, pid: int, check, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if not alive(pid):  # not pid_of(): cmdline can read empty while a process re-execs itself
            raise StackError(service, "process exited during startup")
        if check():
            return
        time.sleep(0.5)
    raise StackError(service, f"not healthy after {deadline_s:.0f}s")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return r.status == 200
    except (OSError, urllib.error.URLError):
        return False


def tcp_ok(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((c.HOST, port)) == 0


def ensure_service(service: str, start, check, after=None) -> None:
    """Idempotent start: leave a healthy instance alone, refuse a port held by someone else."""
    pid = pid_of(service)
    if pid is None:
        for port in c.PORTS[service]:
            owner = port_owner(port)
            if owner:
                raise StackError(service, f"port {port} already in use by {owner}")
        pid, note = start(), "started"
    else:
        note = "already running"
    try:
        wait_healthy(service, pid, check, c.HEALTH_DEADLINE[service])
    except StackError:
        if note == "started":
            stop(service, timeout=5)  # do not leave a half-started process holding the ports
        raise
    if after:
        after()
    c.say(f"{service:9} {note} (pid {pid}, port {c.PORTS[service][0]}, healthy)")
