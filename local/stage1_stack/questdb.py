"""QuestDB: the pinned jar from Maven Central (SHA-1 checked, cached), Java, a loopback-only config."""
from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from . import config as c
from .config import StackError
from .procs import ensure_service, http_ok, run, spawn
from .secrets_env import load_secrets


def download(url: str, dest: Path) -> None:
    """Download to a temp name then rename, so the cache never holds a partial file."""
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    try:
        with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as f:
            shutil.copyfileobj(r, f, 1 << 20)
        tmp.rename(dest)
    finally:
        tmp.unlink(missing_ok=True)


def sha1(path: Path) -> str:
    h = hashlib.sha1()  # noqa: S324 - Maven Central publishes SHA-1 checksums
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def questdb_jar() -> Path:
    jar = c.CACHE / "questdb" / f"questdb-{c.QDB_VERSION}.jar"
    sumfile = jar.with_name(jar.name + ".sha1")
    jar.parent.mkdir(parents=True, exist_ok=True)
    try:
        if not sumfile.exists():
            download(c.QDB_URL + ".sha1", sumfile)
        want = sumfile.read_text().split()[0].lower()
        if jar.exists() and sha1(jar) == want:
            return jar
        c.say(f"questdb   downloading {c.QDB_URL}")
        download(c.QDB_URL, jar)
    except (OSError, urllib.error.URLError) as e:
        raise StackError("questdb", f"download failed: {e}") from e
    if sha1(jar) != want:
        jar.unlink()
        raise StackError("questdb", f"SHA-1 mismatch for {jar.name} (expected {want})")
    return jar


def java_bin() -> str:
    if not shutil.which("java"):
        c.say("questdb   java not found: apt-get install openjdk-17-jre-headless ...")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        r = run(["apt-get", "install", "-y", "openjdk-17-jre-headless"], env=env)
        if r.returncode or not shutil.which("java"):
            raise StackError("questdb", f"cannot install Java: {(r.stderr or r.stdout)[-500:]}")
    return shutil.which("java")


def questdb_conf(root: Path) -> None:
    """Bind everything to loopback. Key names as QuestDB 9.3.4 itself reports them (its docs still
    show http.min.bind.to, which 9.3.4 flags as deprecated). Rewritten on every start: generated file."""
    conf = root / "conf" / "server.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text("\n".join([
        f"http.bind.to={c.HOST}:{c.QDB_HTTP}", f"pg.net.bind.to={c.HOST}:{c.QDB_PG}",
        f"http.min.net.bind.to={c.HOST}:{c.QDB_MIN}",
        "line.tcp.enabled=false", "line.udp.enabled=false", "telemetry.enabled=false",
        "http.security.readonly=false", "cairo.wal.enabled.default=true",
        # Read-only PGWire user (OSS): it can SELECT and nothing that writes. docs/questdb.md.
        "pg.readonly.user.enabled=true", f"pg.readonly.user={c.QDB_RO_USER}",
        f"pg.readonly.password={load_secrets()['STAGE1_QDB_RO_PASSWORD']}",
        # /exp serves exports (gateway + export jobs); the default of 2 concurrent is too few.
        "http.export.connection.limit=8", ""]))
    conf.chmod(0o600)  # it holds the read-only user's password


def up_questdb() -> None:
    def start() -> int:
        jar, java, root = questdb_jar(), java_bin(), c.STATE / "questdb"
        questdb_conf(root)
        return spawn("questdb", [java, "-Xms256m", "-Xmx2g", "-p", str(jar), "-m", "io.questdb/io.questdb.ServerMain",
                                 "-d", str(root)])

    ensure_service("questdb", start, lambda: http_ok(f"http://{c.HOST}:{c.QDB_HTTP}/exec?query=select%201"))
