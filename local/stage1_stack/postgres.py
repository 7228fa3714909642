"""Postgres from the Debian packages, run as an unprivileged user, data in (or linked from) the state dir."""
from __future__ import annotations

import glob
import hashlib
import os
import pwd
import shutil
from pathlib import Path

from . import config as c
from .config import StackError
from .procs import ensure_service, pw_group, run, spawn, tcp_ok


def pg_bin() -> Path:
    """Newest /usr/lib/postgresql/<v>/bin; installs the Debian package if absent."""
    def find():
        dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
        return Path(dirs[-1]).parent if dirs else None
    if find() is None:
        c.say("postgres  not installed: apt-get install postgresql ...")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "postgresql"]):
            r = run(cmd, env=env)
            if r.returncode:
                raise StackError("postgres", f"`{' '.join(cmd)}` failed: {(r.stderr or r.stdout)[-500:]}")
    if find() is None:
        raise StackError("postgres", "no postgres binaries under /usr/lib/postgresql after install")
    return find()


def pg_user() -> str:
    """Postgres refuses to run as root: use the Debian `postgres` user, or create a system user."""
    for name in ("postgres", "stage1pg"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            pass
    r = run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "stage1pg"])
    if r.returncode:
        raise StackError("postgres", f"cannot create user stage1pg: {r.stderr.strip()}")
    return "stage1pg"


def pg_paths(user: str) -> tuple[Path, Path]:
    """(data dir, socket dir). Inside the state dir when the Postgres user can reach it; otherwise
    (a clone under a root-only folder such as a `mktemp -d` dir or /root) in a per-state folder under
    that user's home, linked from `.state/postgres` so `reset` finds it."""
    link = c.STATE / "postgres"
    if link.is_symlink():
        outside = link.resolve().parent
        return outside / "data", outside / "sock"
    if link.is_dir() or run(["runuser", "-u", user, "--", "test", "-x", str(c.STATE)]).returncode == 0:
        return link, c.RUN / "pgsock"
    home = Path(pwd.getpwnam(user).pw_dir)
    base = home if home.is_dir() else Path("/var/tmp")  # noqa: S108 - a 0700 folder owned by that user
    outside = base / f"stage1-{hashlib.sha256(str(c.STATE).encode()).hexdigest()[:12]}"
    for folder in (outside, outside / "data", outside / "sock"):
        folder.mkdir(mode=0o700, exist_ok=True)
        shutil.chown(folder, user, pw_group(user))
    link.symlink_to(outside / "data")
    return outside / "data", outside / "sock"


def pg_prepare(bindir: Path, user: str, password: str) -> Path:
    data, sock = pg_paths(user)
    sock.mkdir(parents=True, exist_ok=True)
    shutil.chown(sock, user, pw_group(user))
    if (data / "PG_VERSION").exists():
        have, want = (data / "PG_VERSION").read_text().strip(), bindir.parent.name
        if have != want:
            raise StackError("postgres", f"data dir is from Postgres {have}, binaries are {want}; run `make reset`")
        return data
    data.mkdir(parents=True, exist_ok=True)
    data.chmod(0o700)
    shutil.chown(data, user, pw_group(user))
    pwfile = sock / "pwfile"
    pwfile.write_text(password + "\n")
    shutil.chown(pwfile, user, pw_group(user))
    pwfile.chmod(0o600)
    try:
        r = run([str(bindir / "initdb"), "-D", str(data), "-U", "stage1", f"--pwfile={pwfile}",
                 "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C"],
                user=user, group=pw_group(user), extra_groups=[], cwd="/")
    finally:
        pwfile.unlink(missing_ok=True)
    if r.returncode:
        shutil.rmtree(data, ignore_errors=True)  # a half-initialised dir would block the next try
        raise StackError("postgres", f"initdb failed: {(r.stderr or r.stdout).strip()[-800:]}")
    return data


def pg_create_db(bindir: Path, password: str) -> None:
    env = dict(os.environ, PGPASSWORD=password, PGCONNECT_TIMEOUT="5")
    psql = [str(bindir / "psql"), "-h", c.HOST, "-p", str(c.PG_PORT), "-U", "stage1", "-d", "postgres", "-tAc"]
    r = run(psql + ["SELECT 1 FROM pg_database WHERE datname = 'stage1'"], env=env, timeout=30)
    if r.returncode:
        raise StackError("postgres", f"psql failed: {r.stderr.strip()}")
    if r.stdout.strip() != "1":
        r = run(psql + ["CREATE DATABASE stage1 OWNER stage1"], env=env, timeout=30)
        if r.returncode:
            raise StackError("postgres", f"CREATE DATABASE failed: {r.stderr.strip()}")


def up_postgres(secrets_: dict) -> None:
    bindir, user, password = pg_bin(), pg_user(), secrets_["STAGE1_PG_PASSWORD"]

    def start() -> int:
        data = pg_prepare(bindir, user, password)
        sock = pg_paths(user)[1]
        return spawn("postgres", [str(bindir / "postgres"), "-D", str(data), "-c", f"listen_addresses={c.HOST}",
                                  "-c", f"port={c.PG_PORT}", "-c", f"unix_socket_directories={sock}",
                                  "-c", "max_connections=200"], user=user)

    def check() -> bool:
        isready = [str(bindir / "pg_isready"), "-q", "-h", c.HOST, "-p", str(c.PG_PORT), "-t", "2"]
        return tcp_ok(c.PG_PORT) and run(isready, timeout=10).returncode == 0

    ensure_service("postgres", start, check, after=lambda: pg_create_db(bindir, password))
