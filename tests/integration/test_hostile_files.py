"""The hostile file corpus (tests/hostile/files.py) through the real API, as a client sends it:
a presigned upload to MinIO → event → importer, and/or the blocking POST /api/questdb/import.

Every refused file ends as a FAILED job whose error names what was wrong (or a 400 from the
blocking import) — never a 5xx, never a job left RUNNING, never a staging table left behind —
and the importing process's peak RSS grows by less than RSS_BOUND_MB while it runs (before the
byte limits, the review's 463 KB Parquet file added 2.2 GiB). Odd-but-valid files import exactly.
"""

from __future__ import annotations

import contextlib
import re
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from imports_support import drop, post_file, wait_job

from stage1.core.questdb import get_questdb

sys.path.insert(0, str(Path(__file__).parents[1] / "hostile"))
from files import CASES, FileCase  # noqa: E402  (tests/hostile is data plus its builders, not a package)

RSS_BOUND_MB = 400
STATE = Path(__file__).parents[2] / ".state" / "run"
CONTENT_TYPES = {"csv": "text/csv", "gz": "application/gzip", "parquet": "application/vnd.apache.parquet",
                 "arrows": "application/vnd.apache.arrow.stream", "arrow": "application/vnd.apache.arrow.file"}
RAN: list[str] = []


def _gateway_pid(url: str) -> int | None:
    """The pid of the local gateway serving `url` (:3000 from the stack's pid file, another port by
    its command line), or None when it is not a local process (then RSS is not checked)."""
    port = urlsplit(url).port
    if port == 3000 and (STATE / "gateway.pid").is_file():
        return int((STATE / "gateway.pid").read_text())
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"stage1_local.gateway" in cmd and f"{port}".encode() in cmd:
                return int(proc.name)
    return None


class PeakRss:
    """Peak RSS of a process while a case runs: its VmHWM reset first where the kernel lets us
    (clear_refs 5), and VmRSS sampled every 20 ms in any case."""

    def __init__(self, pid: int | None) -> None:
        self.pid, self.peak, self.base, self._stop = pid, 0, 0, threading.Event()

    def _read(self, key: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) // 1024
        return 0

    def __enter__(self) -> PeakRss:
        if self.pid is None:
            return self
        with contextlib.suppress(OSError):  # not allowed: the sampled VmRSS alone is used
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        self.base = self.peak = self._read("VmRSS")
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._read("VmRSS"))

    def __exit__(self, *exc: object) -> None:
        if self.pid is None:
            return
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._read("VmHWM"))

    @property
    def grew(self) -> int:
        return self.peak - self.base


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    yield
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print(f"\nhostile files: {len(RAN)} case runs ({', '.join(RAN)})")


def _staging_left(table: str) -> list[str]:
    return [n for (n,) in get_questdb().exec("select table_name from tables()").dataset
            if n.startswith(table) and "__s" in n]


def _check_failure(case: FileCase, message: str) -> None:
    assert case.expect is not None and re.search(case.expect, message), f"{case.name}: {message!r}"


UPLOADS = [c for c in CASES if c.via in ("upload", "both")]
BLOCKING = [c for c in CASES if c.via in ("blocking", "both")]


@pytest.mark.parametrize("case", UPLOADS, ids=[c.name for c in UPLOADS])
def test_upload(client, settings, unique, case):
    data = case.build()
    table = f"zz_hostile_{unique}"
    rss = PeakRss(_gateway_pid(settings.jobs.local_invoke_url or "http://127.0.0.1:3000"))  # MinIO's events go there
    try:
        with rss:
            r = client.post("/api/uploads", json={"filename": case.filename, "size": len(data), "kind": case.kind,
                                                  "measurement": table})
            assert r.status_code < 500, r.text
            if r.status_code >= 400:  # refused before any byte was sent: also a refusal with a message
                _check_failure(case, r.json()["error"] + " " + str(r.json().get("details")))
                RAN.append(f"upload:{case.name}")
                return
            assert r.status_code == 201, r.text
            up = r.json()
            post_file(up, data, case.filename)
            job = wait_job(client, up["job_id"], timeout=120)  # fails the test if the job stays RUNNING
        if case.expect is None:
            assert job["status"] == "COMPLETED", job
            assert job["result"]["rows"] == case.rows
        else:
            assert job["status"] == "FAILED", job
            _check_failure(case, job["error"])
        assert _staging_left(table) == []
        assert rss.grew < RSS_BOUND_MB, f"{case.name}: importer RSS grew {rss.grew} MB"
        RAN.append(f"upload:{case.name}(+{rss.grew}MB)")
    finally:
        drop(table)


@pytest.mark.parametrize("case", BLOCKING, ids=[c.name for c in BLOCKING])
def test_blocking_import(client, gateway_url, settings, unique, case):
    data = case.build()
    if len(data) > settings.imports.inline_import_max_bytes:
        pytest.skip("larger than a blocking import accepts (413): covered by the upload case")
    table = f"zz_hostile_b_{unique}"
    ext = case.filename.rsplit(".", 1)[1]
    try:
        with PeakRss(_gateway_pid(gateway_url)) as rss:
            r = client.post(f"/api/questdb/import?measurement={table}&kind={case.kind}", content=data,
                            headers={"content-type": CONTENT_TYPES[ext]}, timeout=60)
        assert r.status_code < 500, r.text[:500]
        if case.expect is None:
            assert r.status_code == 200, r.text[:500]
            assert r.json()["rows_written"] == case.rows
        else:
            assert r.status_code == 400, r.text[:500]
            body = r.json()
            assert set(body) == {"error", "details"}
            _check_failure(case, body["error"])
        assert _staging_left(table) == []
        assert rss.grew < RSS_BOUND_MB, f"{case.name}: gateway RSS grew {rss.grew} MB"
        RAN.append(f"blocking:{case.name}")
    finally:
        drop(table)


def test_mixed_units_land_on_the_right_instants(client, unique):
    """The one odd-but-valid file: s, ms, µs and ns in one column, one minute apart."""
    case = next(c for c in CASES if c.name == "mixed timestamp units")
    table = f"zz_hostile_m_{unique}"
    try:
        r = client.post(f"/api/questdb/import?measurement={table}&kind=ohlcv", content=case.build(),
                        headers={"content-type": "text/csv"})
        assert r.status_code == 200, r.text
        got = [row[0] for row in get_questdb().exec(f'select timestamp from "{table}" order by timestamp').dataset]
        assert got == ["2023-11-14T22:13:20.000000Z", "2023-11-14T22:14:20.000000Z", "2023-11-14T22:15:20.000000Z",
                       "2023-11-14T22:16:20.000000Z"]
    finally:
        drop(table)
