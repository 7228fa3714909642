#!/usr/bin/env python3
"""Docker-free manager for the local stack: Postgres, QuestDB, MinIO and the local gateway.

Standard library only: it runs before any virtualenv exists (the gateway and the migrations
then run from the project's .venv, which `make venv` creates).
Usage: python3 local/stack.py {up [--no-gateway]|down|status|logs [service]|reset|env|restart-gateway|stop-gateway}
See docs/DEVELOPING.md for ports and settings.
"""
from __future__ import annotations

import contextlib
import datetime
import fcntl
import glob
import hashlib
import hmac
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("STAGE1_STATE_DIR") or REPO / ".state").resolve()
CACHE = Path(os.environ.get("STAGE1_CACHE_DIR") or Path.home() / ".cache" / "stage1").resolve()
LOGS, RUN = STATE / "logs", STATE / "run"
SECRETS_FILE = STATE / "secrets.env"
SECRET_KEYS = ("STAGE1_PG_PASSWORD", "STAGE1_S3_ACCESS_KEY", "STAGE1_S3_SECRET_KEY", "STAGE1_ADMIN_SECRET",
               "STAGE1_QDB_RO_PASSWORD")

HOST = "127.0.0.1"
PG_PORT = 55432
QDB_HTTP, QDB_PG, QDB_MIN = 9000, 8812, 9003
MINIO_PORT, MINIO_CONSOLE = 9900, 9901
QDB_VERSION = "9.3.4"
QDB_RO_USER = "stage1_ro"
QDB_URL = f"https://repo1.maven.org/maven2/org/questdb/questdb/{QDB_VERSION}/questdb-{QDB_VERSION}.jar"
MINIO_MODULE = "github.com/minio/minio"
MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
BUCKET, REGION = "stage1-uploads", "us-east-1"
WEBHOOK_ARN = "arn:minio:sqs::STAGE1:webhook"
GATEWAY_PORT = 3000
VENV_PY = REPO / ".venv" / "bin" / "python"
ENV_FILE = STATE / "stage1.env"  # the settings every local tool reads (STAGE1_ENV_FILE)
SERVICES = ("postgres", "questdb", "minio", "gateway")
PORTS = {"postgres": (PG_PORT,), "questdb": (QDB_HTTP, QDB_PG, QDB_MIN), "minio": (MINIO_PORT, MINIO_CONSOLE),
         "gateway": (GATEWAY_PORT,)}
HEALTH_DEADLINE = {"postgres": 60, "questdb": 60, "minio": 30, "gateway": 30}


class StackError(Exception):
    """A service could not be installed or started; message names it and why."""

    def __init__(self, service: str, reason: str):
        super().__init__(f"{service} failed to start: {reason}")
        self.service = service


def say(msg: str) -> None:
    print(msg, flush=True)


def run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def tail(path: Path, n: int) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-n:]
    except FileNotFoundError:
        return []


# ---------------------------------------------------------------- secrets / env
def load_secrets() -> dict[str, str]:
    """Read secrets.env, generating missing values once (0600, never rewritten needlessly)."""
    values = {}
    if SECRETS_FILE.exists():
        for line in SECRETS_FILE.read_text().splitlines():
            key, sep, val = line.partition("=")
            if sep:
                values[key.strip()] = val.strip()
    if all(values.get(k) for k in SECRET_KEYS):
        return values
    # MinIO keys: hex keeps them alphanumeric (MinIO wants >= 3 / >= 8 chars).
    fresh = {"STAGE1_PG_PASSWORD": secrets.token_urlsafe(24), "STAGE1_S3_ACCESS_KEY": secrets.token_hex(10),
             "STAGE1_S3_SECRET_KEY": secrets.token_hex(20), "STAGE1_ADMIN_SECRET": secrets.token_urlsafe(32),
             "STAGE1_QDB_RO_PASSWORD": secrets.token_hex(20)}
    values = {k: values.get(k) or fresh[k] for k in SECRET_KEYS}
    STATE.mkdir(parents=True, exist_ok=True)
    fd = os.open(SECRETS_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.writelines(f"{k}={v}\n" for k, v in values.items())
    os.chmod(SECRETS_FILE, 0o600)
    return values



WEBHOOK_TOKEN_KEY = "STAGE1_WEBHOOK_TOKEN"  # noqa: S105 - the name of the key, not a secret


def webhook_token() -> str:
    """The bearer token MinIO sends with its webhook and the gateway checks (docs/imports.md).
    Appended to secrets.env once (kept out of SECRET_KEYS so other keys there are never rewritten)."""
    values = load_secrets()
    if values.get(WEBHOOK_TOKEN_KEY):
        return values[WEBHOOK_TOKEN_KEY]
    token = secrets.token_hex(24)
    with open(SECRETS_FILE, "a") as f:
        f.write(f"{WEBHOOK_TOKEN_KEY}={token}\n")
    return token


def env_vars() -> dict[str, str]:
    s = load_secrets()
    return {
        "STAGE1_PG_DSN": f"postgresql://stage1:{s['STAGE1_PG_PASSWORD']}@{HOST}:{PG_PORT}/stage1",
        "STAGE1_QDB_HTTP_URL": f"http://{HOST}:{QDB_HTTP}", "STAGE1_QDB_USER": "", "STAGE1_QDB_PASSWORD": "",
        # QuestDB's read-only PGWire user: the user SQL of POST /api/questdb/query runs as it.
        "STAGE1_QDB_PG_READONLY_DSN": f"postgresql://{QDB_RO_USER}:{s['STAGE1_QDB_RO_PASSWORD']}@{HOST}:{QDB_PG}/qdb",
        "STAGE1_EXPORT_CAN_STREAM": "true",  # the local gateway streams responses (docs/questdb.md)
        "STAGE1_S3_ENDPOINT": f"http://{HOST}:{MINIO_PORT}",
        "STAGE1_S3_ACCESS_KEY": s["STAGE1_S3_ACCESS_KEY"], "STAGE1_S3_SECRET_KEY": s["STAGE1_S3_SECRET_KEY"],
        "STAGE1_S3_REGION": REGION, "STAGE1_BUCKET": BUCKET, "STAGE1_ADMIN_SECRET": s["STAGE1_ADMIN_SECRET"],
        # `STAGE1_AUTH_ENABLED=false make up` turns token checks off for local experiments (docs/auth.md).
        "STAGE1_AUTH_ENABLED": os.environ.get("STAGE1_AUTH_ENABLED", "true"),
        # The bootstrap token (read, write, admin) minted after the migrations: `make env` shows it.
        "STAGE1_TOKEN": s.get("STAGE1_TOKEN", ""),
        # Browser origins allowed by the gateway's CORS and by MinIO (the template's CorsAllowOrigins).
        "STAGE1_CORS_ALLOW_ORIGINS": os.environ.get("STAGE1_CORS_ALLOW_ORIGINS", "https://agenticresearch.info"),
        "STAGE1_GATEWAY_URL": f"http://{HOST}:{GATEWAY_PORT}",
        # invoke_async from processes outside a gateway (tests, scripts) goes to the gateway on 3000.
        "STAGE1_LOCAL_INVOKE_URL": f"http://{HOST}:{GATEWAY_PORT}",
        # The local worker token: MinIO's webhook and dispatch send it to the gateway's /_local/ routes,
        # which refuse everything without one (a MinIO started before it existed gets it on its next start).
        "STAGE1_WEBHOOK_TOKEN": webhook_token(),
        "STAGE1_STATE_DIR": str(STATE), "STAGE1_CACHE_DIR": str(CACHE),
    }


# ---------------------------------------------------------------- processes
def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"  # zombie = dead
    except (OSError, IndexError):
        return False


def pid_of(service: str) -> int | None:
    """Pid from the pid file if that process is alive and is still our service (pids get reused)."""
    try:
        pid = int((RUN / f"{service}.pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, ValueError):
        return None
    ours = service in cmdline or (service == "questdb" and "io.questdb" in cmdline)
    return pid if ours and alive(pid) else None


def port_owner(port: int) -> str | None:
    """Who listens on 127.0.0.1/0.0.0.0:port, as 'pid N (cmd)', or 'unknown'; None if free."""
    with socket.socket() as s:
        s.settimeout(1)
        if s.connect_ex((HOST, port)) != 0:
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
    LOGS.mkdir(parents=True, exist_ok=True)
    RUN.mkdir(parents=True, exist_ok=True)
    with open(LOGS / f"{service}.log", "ab") as log:
        log.write(f"\n=== stack.py start {datetime.datetime.now().isoformat()} ===\n".encode())
        log.flush()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=cwd,
                                env=env, start_new_session=True, user=user, group=user and pw_group(user),
                                extra_groups=[] if user else None)
    (RUN / f"{service}.pid").write_text(str(proc.pid))
    return proc.pid


def stop(service: str, timeout: float = 20) -> None:
    pid = pid_of(service)
    if pid is None:
        (RUN / f"{service}.pid").unlink(missing_ok=True)
        say(f"{service:9} not running")
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
    (RUN / f"{service}.pid").unlink(missing_ok=True)
    say(f"{service:9} {how} (pid {pid})")


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
        return s.connect_ex((HOST, port)) == 0


def ensure_service(service: str, start, check, after=None) -> None:
    """Idempotent start: leave a healthy instance alone, refuse a port held by someone else."""
    pid = pid_of(service)
    if pid is None:
        for port in PORTS[service]:
            owner = port_owner(port)
            if owner:
                raise StackError(service, f"port {port} already in use by {owner}")
        pid, note = start(), "started"
    else:
        note = "already running"
    try:
        wait_healthy(service, pid, check, HEALTH_DEADLINE[service])
    except StackError:
        if note == "started":
            stop(service, timeout=5)  # do not leave a half-started process holding the ports
        raise
    if after:
        after()
    say(f"{service:9} {note} (pid {pid}, port {PORTS[service][0]}, healthy)")


# ---------------------------------------------------------------- postgres
def pw_group(user: str) -> int:
    return pwd.getpwnam(user).pw_gid


def pg_bin() -> Path:
    """Newest /usr/lib/postgresql/<v>/bin; installs the Debian package if absent."""
    def find():
        dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
        return Path(dirs[-1]).parent if dirs else None
    if find() is None:
        say("postgres  not installed: apt-get install postgresql ...")
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
    link = STATE / "postgres"
    if link.is_symlink():
        outside = link.resolve().parent
        return outside / "data", outside / "sock"
    if link.is_dir() or run(["runuser", "-u", user, "--", "test", "-x", str(STATE)]).returncode == 0:
        return link, RUN / "pgsock"
    home = Path(pwd.getpwnam(user).pw_dir)
    base = home if home.is_dir() else Path("/var/tmp")  # noqa: S108 - a 0700 folder owned by that user
    outside = base / f"stage1-{hashlib.sha256(str(STATE).encode()).hexdigest()[:12]}"
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
    psql = [str(bindir / "psql"), "-h", HOST, "-p", str(PG_PORT), "-U", "stage1", "-d", "postgres", "-tAc"]
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
        return spawn("postgres", [str(bindir / "postgres"), "-D", str(data), "-c", f"listen_addresses={HOST}",
                                  "-c", f"port={PG_PORT}", "-c", f"unix_socket_directories={sock}",
                                  "-c", "max_connections=200"], user=user)

    def check() -> bool:
        isready = [str(bindir / "pg_isready"), "-q", "-h", HOST, "-p", str(PG_PORT), "-t", "2"]
        return tcp_ok(PG_PORT) and run(isready, timeout=10).returncode == 0

    ensure_service("postgres", start, check, after=lambda: pg_create_db(bindir, password))


# ---------------------------------------------------------------- questdb
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
    jar = CACHE / "questdb" / f"questdb-{QDB_VERSION}.jar"
    sumfile = jar.with_name(jar.name + ".sha1")
    jar.parent.mkdir(parents=True, exist_ok=True)
    try:
        if not sumfile.exists():
            download(QDB_URL + ".sha1", sumfile)
        want = sumfile.read_text().split()[0].lower()
        if jar.exists() and sha1(jar) == want:
            return jar
        say(f"questdb   downloading {QDB_URL}")
        download(QDB_URL, jar)
    except (OSError, urllib.error.URLError) as e:
        raise StackError("questdb", f"download failed: {e}") from e
    if sha1(jar) != want:
        jar.unlink()
        raise StackError("questdb", f"SHA-1 mismatch for {jar.name} (expected {want})")
    return jar


def java_bin() -> str:
    if not shutil.which("java"):
        say("questdb   java not found: apt-get install openjdk-17-jre-headless ...")
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
        f"http.bind.to={HOST}:{QDB_HTTP}", f"pg.net.bind.to={HOST}:{QDB_PG}", f"http.min.net.bind.to={HOST}:{QDB_MIN}",
        "line.tcp.enabled=false", "line.udp.enabled=false", "telemetry.enabled=false",
        "http.security.readonly=false", "cairo.wal.enabled.default=true",
        # Read-only PGWire user (OSS): it can SELECT and nothing that writes. docs/questdb.md.
        "pg.readonly.user.enabled=true", f"pg.readonly.user={QDB_RO_USER}",
        f"pg.readonly.password={load_secrets()['STAGE1_QDB_RO_PASSWORD']}",
        # /exp serves exports (gateway + export jobs); the default of 2 concurrent is too few.
        "http.export.connection.limit=8", ""]))
    conf.chmod(0o600)  # it holds the read-only user's password


def up_questdb() -> None:
    def start() -> int:
        jar, java, root = questdb_jar(), java_bin(), STATE / "questdb"
        questdb_conf(root)
        return spawn("questdb", [java, "-Xms256m", "-Xmx2g", "-p", str(jar), "-m", "io.questdb/io.questdb.ServerMain",
                                 "-d", str(root)])

    ensure_service("questdb", start, lambda: http_ok(f"http://{HOST}:{QDB_HTTP}/exec?query=select%201"))


# ---------------------------------------------------------------- minio
def minio_bin() -> Path:
    """Build the pinned module once into the cache; the version is in the file name."""
    bindir = CACHE / "bin"
    target = bindir / f"minio-{MINIO_VERSION}"
    if target.exists():
        return target
    bindir.mkdir(parents=True, exist_ok=True)
    with open(bindir / ".minio-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent `up` waits for our build instead of racing it
        if target.exists():
            return target
        built = bindir / "minio"
        go = shutil.which("go") or ("/usr/local/go/bin/go" if os.path.exists("/usr/local/go/bin/go") else None)
        # Adopt a plain `minio` left by an earlier build only if it is exactly the pinned version.
        if not (go and built.exists() and MINIO_VERSION in run([go, "version", "-m", str(built)]).stdout):
            if not go:
                raise StackError("minio", "`go` not found; needed to build MinIO from source")
            say(f"minio     building {MINIO_MODULE}@{MINIO_VERSION} from source (takes several minutes) ...")
            LOGS.mkdir(parents=True, exist_ok=True)
            blog = LOGS / "minio-build.log"
            env = dict(os.environ, GOBIN=str(bindir), GOFLAGS="-trimpath")
            with open(blog, "wb") as f:
                try:
                    rc = subprocess.run([go, "install", f"{MINIO_MODULE}@{MINIO_VERSION}"], env=env, stdout=f,
                                        stderr=subprocess.STDOUT, timeout=1800).returncode
                except subprocess.TimeoutExpired:
                    rc = "timeout (30 min)"
            if rc != 0 or not built.exists():
                raise StackError("minio", f"go install failed ({rc}):\n  " + "\n  ".join(tail(blog, 20)))
        built.rename(target)
    return target


def sigv4_request(method: str, path: str, query: str, body: bytes, ak: str, sk: str) -> tuple[int, bytes]:
    """Minimal AWS SigV4 for MinIO admin-ish calls (path-style, no special chars in path/query)."""
    host = f"{HOST}:{MINIO_PORT}"
    amz_date = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    payload = hashlib.sha256(body).hexdigest()
    headers = {"host": host, "x-amz-content-sha256": payload, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canon_query = "&".join(sorted(q if "=" in q else q + "=" for q in query.split("&") if q))
    canonical = "\n".join([method, path, canon_query, "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)),
                           signed, payload])
    scope = f"{amz_date[:8]}/{REGION}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + sk).encode()
    for part in (amz_date[:8], REGION, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = f"AWS4-HMAC-SHA256 Credential={ak}/{scope}, SignedHeaders={signed}, Signature={sig}"
    url = f"http://{host}{path}" + (f"?{query}" if query else "")
    req = urllib.request.Request(url, data=body if method == "PUT" else None, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


NOTIFICATION_XML = f"""<NotificationConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
<QueueConfiguration><Id>stage1-uploads-created</Id><Queue>{WEBHOOK_ARN}</Queue><Event>s3:ObjectCreated:*</Event>
<Filter><S3Key><FilterRule><Name>prefix</Name><Value>uploads/</Value></FilterRule></S3Key></Filter>
</QueueConfiguration></NotificationConfiguration>""".encode()


def minio_bucket(ak: str, sk: str) -> None:
    """Create the bucket if missing and (re)apply its ObjectCreated webhook notification."""
    status, body = sigv4_request("HEAD", f"/{BUCKET}", "", b"", ak, sk)
    if status == 404:
        status, body = sigv4_request("PUT", f"/{BUCKET}", "", b"", ak, sk)
    if status != 200:
        raise StackError("minio", f"bucket {BUCKET}: HTTP {status} {body[:300]!r}")
    status, body = sigv4_request("PUT", f"/{BUCKET}", "notification", NOTIFICATION_XML, ak, sk)
    if status != 200:
        raise StackError("minio", f"bucket notification: HTTP {status} {body[:300]!r}")


def up_minio(secrets_: dict) -> None:
    ak, sk = secrets_["STAGE1_S3_ACCESS_KEY"], secrets_["STAGE1_S3_SECRET_KEY"]

    def start() -> int:
        binary, queue = minio_bin(), STATE / "minio-queue"
        (STATE / "minio").mkdir(parents=True, exist_ok=True)
        queue.mkdir(parents=True, exist_ok=True)
        # With a queue_dir, an offline webhook (gateway not up yet) neither blocks startup nor loses events.
        env = dict(os.environ, MINIO_ROOT_USER=ak, MINIO_ROOT_PASSWORD=sk, MINIO_BROWSER="off",
                   MINIO_NOTIFY_WEBHOOK_ENABLE_STAGE1="on",
                   MINIO_NOTIFY_WEBHOOK_ENDPOINT_STAGE1=f"http://{HOST}:{GATEWAY_PORT}/_local/s3-events",
                   MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_STAGE1=webhook_token(),
                   MINIO_NOTIFY_WEBHOOK_QUEUE_DIR_STAGE1=str(queue), MINIO_UPDATE="off",
                   # MinIO has no bucket CORS API (PutBucketCors: NotImplemented); its server-wide rule
                   # takes the template's origins instead. It always exposes ETag (docs/auth.md).
                   MINIO_API_CORS_ALLOW_ORIGIN=env_vars()["STAGE1_CORS_ALLOW_ORIGINS"])
        return spawn("minio", [str(binary), "server", str(STATE / "minio"), "--address", f"{HOST}:{MINIO_PORT}",
                               "--console-address", f"{HOST}:{MINIO_CONSOLE}"], env=env)

    ensure_service("minio", start, lambda: http_ok(f"http://{HOST}:{MINIO_PORT}/minio/health/live"),
                   after=lambda: minio_bucket(ak, sk))


# ---------------------------------------------------------------- gateway (needs the project's venv)
def venv_python() -> str:
    if not VENV_PY.exists():
        raise StackError("gateway", f"{VENV_PY} is missing: run `make venv` (make up does)")
    return str(VENV_PY)


def write_env_file() -> None:
    ENV_FILE.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(ENV_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.writelines(f"{k}={v}\n" for k, v in env_vars().items())


# Settings a relocated stack forces on its tools (the environment wins over the env file); None = inherit.
TOOL_ENV_OVERRIDES: dict[str, str] | None = None


def tool_env() -> dict[str, str]:
    if TOOL_ENV_OVERRIDES is None:
        return {**os.environ, "STAGE1_ENV_FILE": str(ENV_FILE)}
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("STAGE1_")}
    return {**inherited, **TOOL_ENV_OVERRIDES, "STAGE1_ENV_FILE": str(ENV_FILE)}


def relocate(state: Path, ports: dict[str, int], tool_overrides: dict[str, str] | None = None) -> None:
    """Point this module at another state dir and ports: a private stack for fault tests
    (tests/integration/private_stack.py loads its own copy of this module). The tools it starts
    (migrations, token, gateway) then ignore the caller's STAGE1_* variables, so nothing of the
    shared stack leaks in. `make up` never calls this."""
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


def migrate() -> None:
    """Apply pending migrations before the functions serve (idempotent)."""
    done = run([venv_python(), "-m", "stage1_local.migrate", "up"], cwd=REPO, env=tool_env())
    if done.returncode != 0:
        raise StackError("migrations", (done.stdout + done.stderr).strip()[-800:])
    say(f"{'schema':9} {done.stdout.strip().splitlines()[-1]}")


def bootstrap_token() -> None:
    """Keep (or mint) the local bootstrap token in secrets.env and print it (stage1_local.bootstrap)."""
    done = run([venv_python(), "-m", "stage1_local.bootstrap", "--secrets", str(SECRETS_FILE)], cwd=REPO,
               env=tool_env())
    if done.returncode != 0:
        raise StackError("token", (done.stdout + done.stderr).strip()[-800:])
    how, _, token = done.stdout.strip().splitlines()[-1].partition(" ")
    write_env_file()
    say(f"{'token':9} {how}: STAGE1_TOKEN={token} (read, write, admin; `make env` shows it)")
    say(f"{'':9} curl -H 'X-Stage1-Token: {token}' http://{HOST}:{GATEWAY_PORT}/api/datasets")


def up_gateway() -> None:
    def start() -> int:
        cmd = [venv_python(), "-m", "stage1_local.gateway", "--port", str(GATEWAY_PORT)]
        return spawn("gateway", cmd, env=tool_env(), cwd=str(REPO))

    ensure_service("gateway", start, lambda: http_ok(f"http://{HOST}:{GATEWAY_PORT}/api/health"))


# ---------------------------------------------------------------- commands
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
            say(f"stack: {e}" if isinstance(e, StackError) else f"stack: {service} failed to start: {e}")
            lines = tail(LOGS / f"{service}.log", 20)
            if lines:
                say(f"--- last {len(lines)} lines of {LOGS / f'{service}.log'} ---\n" + "\n".join(lines))
            return 1
    return 0


def cmd_down(_args) -> int:
    for service in reversed(SERVICES):
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
    checks = {"postgres": lambda: tcp_ok(PG_PORT),
              "gateway": lambda: http_ok(f"http://{HOST}:{GATEWAY_PORT}/api/health"),
              "questdb": lambda: http_ok(f"http://{HOST}:{QDB_HTTP}/exec?query=select%201"),
              "minio": lambda: http_ok(f"http://{HOST}:{MINIO_PORT}/minio/health/live")}
    for service in SERVICES:
        pid, port = pid_of(service), PORTS[service][0]
        if pid:
            say(f"{service:9} running  pid {pid:<7} port {port:<6} {'healthy' if checks[service]() else 'UNHEALTHY'}")
        else:
            owner = port_owner(port)
            say(f"{service:9} stopped  pid -       port {port}" + (f"  (port held by {owner})" if owner else ""))
    return 0


def cmd_logs(args) -> int:
    services = args or SERVICES
    for service in services:
        if service not in SERVICES:
            say(f"stack: unknown service {service!r} (one of {', '.join(SERVICES)})")
            return 2
        path = LOGS / f"{service}.log"
        say(f"==> {path} <==")
        say("\n".join(tail(path, 100)) or "(no log yet)")
    return 0


def cmd_reset(args) -> int:
    cmd_down(args)
    if STATE in (Path("/"), Path.home(), REPO) or not STATE.exists():
        return 0  # never wipe something that is not a dedicated state dir
    pg_link = STATE / "postgres"
    if pg_link.is_symlink():  # Postgres data kept outside the state dir (see pg_paths)
        shutil.rmtree(pg_link.resolve().parent, ignore_errors=True)
    for entry in STATE.iterdir():
        shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    say(f"reset: wiped {STATE} (install cache {CACHE} kept)")
    return 0


def cmd_env(_args) -> int:
    for key, value in env_vars().items():
        print(f"{key}={value}")
    return 0


COMMANDS = {"up": cmd_up, "down": cmd_down, "status": cmd_status, "logs": cmd_logs, "reset": cmd_reset,
            "env": cmd_env, "restart-gateway": cmd_restart_gateway, "stop-gateway": cmd_stop_gateway}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
