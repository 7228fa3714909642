"""MinIO: the pinned module built once from source into the cache, the bucket and its webhook."""
from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

from . import config as c
from .config import StackError
from .procs import ensure_service, http_ok, run, spawn, tail
from .secrets_env import env_vars, webhook_token
from .sigv4 import signed_request

NOTIFICATION_XML = f"""<NotificationConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
<QueueConfiguration><Id>stage1-uploads-created</Id><Queue>{c.WEBHOOK_ARN}</Queue><Event>s3:ObjectCreated:*</Event>
<Filter><S3Key><FilterRule><Name>prefix</Name><Value>uploads/</Value></FilterRule></S3Key></Filter>
</QueueConfiguration></NotificationConfiguration>""".encode()


def minio_bin() -> Path:
    """Build the pinned module once into the cache; the version is in the file name."""
    bindir = c.CACHE / "bin"
    target = bindir / f"minio-{c.MINIO_VERSION}"
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
        if not (go and built.exists() and c.MINIO_VERSION in run([go, "version", "-m", str(built)]).stdout):
            if not go:
                raise StackError("minio", "`go` not found; needed to build MinIO from source")
            c.say(f"minio     building {c.MINIO_MODULE}@{c.MINIO_VERSION} from source (takes several minutes) ...")
            c.LOGS.mkdir(parents=True, exist_ok=True)
            blog = c.LOGS / "minio-build.log"
            env = dict(os.environ, GOBIN=str(bindir), GOFLAGS="-trimpath")
            with open(blog, "wb") as f:
                try:
                    rc = subprocess.run([go, "install", f"{c.MINIO_MODULE}@{c.MINIO_VERSION}"], env=env, stdout=f,
                                        stderr=subprocess.STDOUT, timeout=1800).returncode
                except subprocess.TimeoutExpired:
                    rc = "timeout (30 min)"
            if rc != 0 or not built.exists():
                raise StackError("minio", f"go install failed ({rc}):\n  " + "\n  ".join(tail(blog, 20)))
        built.rename(target)
    return target


# Origins of the web client served by a local gateway (functions/web; docs/web.md), any port.
LOCAL_ORIGINS = ("http://127.0.0.1:*", "http://localhost:*")


def sigv4_request(method: str, path: str, query: str, body: bytes, ak: str, sk: str) -> tuple[int, bytes]:
    """A signed S3 request to this stack's MinIO."""
    return signed_request(f"{c.HOST}:{c.MINIO_PORT}", c.REGION, method, path, query, body, ak, sk)


def minio_bucket(ak: str, sk: str) -> None:
    """Create the bucket if missing and (re)apply its ObjectCreated webhook notification."""
    status, body = sigv4_request("HEAD", f"/{c.BUCKET}", "", b"", ak, sk)
    if status == 404:
        status, body = sigv4_request("PUT", f"/{c.BUCKET}", "", b"", ak, sk)
    if status != 200:
        raise StackError("minio", f"bucket {c.BUCKET}: HTTP {status} {body[:300]!r}")
    status, body = sigv4_request("PUT", f"/{c.BUCKET}", "notification", NOTIFICATION_XML, ak, sk)
    if status != 200:
        raise StackError("minio", f"bucket notification: HTTP {status} {body[:300]!r}")


def up_minio(secrets_: dict) -> None:
    ak, sk = secrets_["STAGE1_S3_ACCESS_KEY"], secrets_["STAGE1_S3_SECRET_KEY"]

    def start() -> int:
        binary, queue = minio_bin(), c.STATE / "minio-queue"
        (c.STATE / "minio").mkdir(parents=True, exist_ok=True)
        queue.mkdir(parents=True, exist_ok=True)
        # With a queue_dir, an offline webhook (gateway not up yet) neither blocks startup nor loses events.
        env = dict(os.environ, MINIO_ROOT_USER=ak, MINIO_ROOT_PASSWORD=sk, MINIO_BROWSER="off",
                   MINIO_NOTIFY_WEBHOOK_ENABLE_STAGE1="on",
                   MINIO_NOTIFY_WEBHOOK_ENDPOINT_STAGE1=f"http://{c.HOST}:{c.GATEWAY_PORT}/_local/s3-events",
                   MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_STAGE1=webhook_token(),
                   MINIO_NOTIFY_WEBHOOK_QUEUE_DIR_STAGE1=str(queue), MINIO_UPDATE="off",
                   # MinIO has no bucket CORS API (PutBucketCors: NotImplemented); its server-wide rule
                   # takes the template's origins instead, plus the local gateway's (the web client,
                   # served on any local port, uploads straight to the bucket). It always exposes ETag.
                   MINIO_API_CORS_ALLOW_ORIGIN=",".join([env_vars()["STAGE1_CORS_ALLOW_ORIGINS"], *LOCAL_ORIGINS]))
        return spawn("minio", [str(binary), "server", str(c.STATE / "minio"), "--address", f"{c.HOST}:{c.MINIO_PORT}",
                               "--console-address", f"{c.HOST}:{c.MINIO_CONSOLE}"], env=env)

    ensure_service("minio", start, lambda: http_ok(f"http://{c.HOST}:{c.MINIO_PORT}/minio/health/live"),
                   after=lambda: minio_bucket(ak, sk))
