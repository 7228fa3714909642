"""Helpers of the client, CLI, events and demo tests (tests/integration/test_client*.py, test_cli.py,
test_events.py, test_demo.py)."""

from __future__ import annotations

import os
import random
import sys
import uuid
from pathlib import Path

from stage1.core import db
from stage1.jobs import service as jobs

# Jobs the tests drive by hand: no function runs this type, so nothing else touches them.
TEST_JOB_TYPE = "client_test"
STAGE1 = str(Path(sys.executable).parent / "stage1")


_created: list[str] = []


def new_job(total: int | None = None) -> str:
    with db.connection() as conn:
        job_id = jobs.create_job(conn, TEST_JOB_TYPE, {"test": True}, total=total).job_id
    _created.append(job_id)
    return job_id


def cancel_leftover_jobs() -> None:
    """Cancel the test jobs a failed test left PENDING/RUNNING (the shared table stays tidy)."""
    while _created:
        job_id = _created.pop()
        job = jobs.find_job(job_id)
        if job is not None and not job.terminal:
            jobs.cancel(job_id)


def cli_env(gateway_url: str, token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGE1_")}
    env.update({"STAGE1_URL": gateway_url, "STAGE1_TOKEN": token, "COLUMNS": "200"})
    return env


def write_ohlcv(path: Path, rows: int, *, start: int = 1_704_067_200, step: int = 60, seed: int = 7) -> Path:
    rng = random.Random(seed)
    price = 100.0
    with open(path, "w") as f:
        f.write("timestamp,open,high,low,close,volume\n")
        for i in range(rows):
            close = price * (1 + rng.gauss(0, 0.002))
            f.write(f"{start + i * step},{price:.4f},{max(price, close) * 1.001:.4f},"
                    f"{min(price, close) * 0.999:.4f},{close:.4f},{rng.uniform(1, 10):.3f}\n")
            price = close
    return path


def write_ohlcv_bytes(path: Path, min_bytes: int, *, start: int = 1_704_067_200) -> int:
    """An OHLCV CSV of at least `min_bytes` (fast: fixed-width rows); returns its row count."""
    line_tail = ",100.0000,101.0000,99.0000,100.5000,5.000\n"
    rows = 0
    with open(path, "w") as f:
        f.write("timestamp,open,high,low,close,volume\n")
        written = 0
        block = []
        while written < min_bytes:
            line = f"{start + rows}{line_tail}"
            block.append(line)
            written += len(line)
            rows += 1
            if len(block) == 50_000:
                f.write("".join(block))
                block = []
        f.write("".join(block))
    return rows


def unique_slug(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"
