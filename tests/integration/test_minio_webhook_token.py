"""MinIO sends the webhook token the way local/stack.py configures it (`MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_STAGE1`)
and the gateway's /_local/s3-events checks it (`Authorization: Bearer <token>`). A private MinIO from the
install cache on spare ports, posting to a recorder here: the shared MinIO is never restarted."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from private_stack import free_ports, load_stack_module

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def recorder():
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def _record(self):
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            seen.append({"method": self.command, "auth": self.headers.get("authorization"), "body": body})
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        do_POST = do_HEAD = do_GET = _record

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], seen
    server.shutdown()


def test_minio_sends_the_configured_bearer_token(recorder, tmp_path):
    stack = load_stack_module()
    binary = stack.CACHE / "bin" / f"minio-{stack.MINIO_VERSION}"
    if not binary.exists():
        pytest.skip(f"no MinIO build in {binary.parent} (make up builds it)")
    hook_port, seen = recorder
    port, console = free_ports(2)
    ak, sk, token = secrets.token_hex(8), secrets.token_hex(16), secrets.token_hex(24)
    env = dict(os.environ, MINIO_ROOT_USER=ak, MINIO_ROOT_PASSWORD=sk, MINIO_BROWSER="off", MINIO_UPDATE="off",
               MINIO_NOTIFY_WEBHOOK_ENABLE_STAGE1="on",
               MINIO_NOTIFY_WEBHOOK_ENDPOINT_STAGE1=f"http://127.0.0.1:{hook_port}/_local/s3-events",
               MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_STAGE1=token)
    proc = subprocess.Popen([str(binary), "server", str(tmp_path / "data"), "--address", f"127.0.0.1:{port}",
                             "--console-address", f"127.0.0.1:{console}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/minio/health/live", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "private MinIO did not start"
            time.sleep(0.3)
        stack.MINIO_PORT = port  # the same bucket + notification setup as `make up`, on this instance
        stack.minio_bucket(ak, sk)
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id=ak,
                          aws_secret_access_key=sk, region_name=stack.REGION,
                          config=Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required"))
        s3.put_object(Bucket=stack.BUCKET, Key="uploads/token-test/data.csv", Body=b"timestamp,v\n1,2\n")
        deadline = time.monotonic() + 20
        while not [e for e in seen if e["method"] == "POST"]:
            assert time.monotonic() < deadline, f"no event posted: {seen}"
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(15)
    post = next(e for e in seen if e["method"] == "POST")
    assert post["auth"] == f"Bearer {token}"
    record = json.loads(post["body"])["Records"][0]
    assert record["s3"]["object"]["key"] == "uploads%2Ftoken-test%2Fdata.csv"  # URL-encoded, as on AWS
