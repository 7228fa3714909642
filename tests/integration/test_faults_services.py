"""Postgres restarted under load and MinIO losing an event, on the private stack (private_stack.py).

- Postgres stopped while clients read and write: requests answer 503 naming postgres, `/api/healthz`
  keeps answering promptly, and after Postgres is back requests succeed again without a gateway
  restart (the pool drops its dead connections).
- The bucket's ObjectCreated notification removed (the event is lost): the upload's job stays
  PENDING until `POST /api/uploads/{id}/complete` nudges it, or the sweeper finds the object.
"""

from __future__ import annotations

import threading
import time

import pytest
from private_stack import (
    job_now,
    make_dataset,
    ohlcv_file,
    pclient_fixture,  # noqa: F401 - fixture `pclient`
    post_file,
    pstack_fixture,  # noqa: F401 - fixture `pstack`
    unique,
    wait_job_status,
    wait_until,
)

# Long enough for requests to end inside the outage: the pool waits up to 5 s for a connection (core/db.py).
PG_DOWN_SECONDS = 9
HEALTH_MAX_SECONDS = 8.0  # healthz must answer within this even with Postgres gone


class Recorder:
    """Requests made in a loop by a thread: (started, ended, status, service named in the envelope)."""

    def __init__(self) -> None:
        self.items: list[tuple[float, float, int | None, str | None, str]] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def loop(self, stack, call) -> None:
        with stack.client(timeout=30) as c:
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    r = call(c)
                    status, text = r.status_code, r.text[:300]
                    service = None
                    if status >= 400:
                        service = (r.json().get("details") or {}).get("service")
                except Exception as exc:  # noqa: BLE001 - a transport error is an outcome to assert on
                    status, service, text = None, None, repr(exc)[:300]
                with self.lock:
                    self.items.append((started, time.monotonic(), status, service, text))
                time.sleep(0.05)

    def between(self, t0: float, t1: float) -> list[tuple[float, float, int | None, str | None, str]]:
        """The requests that started and ended in [t0, t1]."""
        with self.lock:
            return [i for i in self.items if i[0] >= t0 and i[1] <= t1]

    def ended(self, t0: float, t1: float) -> list[tuple[float, float, int | None, str | None, str]]:
        """The requests that ended in [t0, t1] (they saw Postgres down if that was the outage)."""
        with self.lock:
            return [i for i in self.items if t0 <= i[1] <= t1]


def test_postgres_restart_under_load_503_then_recovery_without_gateway_restart(pstack, pclient):
    slug = unique("fltpg")
    make_dataset(pclient, slug)
    gateway_pid = pstack.pid("gateway")
    load, health = Recorder(), Recorder()
    n = [0]

    def write(c):
        n[0] += 1
        return c.post("/api/datasets", json={"dataset_slug": slug, "metadata": {"n": n[0]}})

    callers = [lambda c: c.get("/api/datasets", params={"limit": 5}), lambda c: c.get(f"/api/datasets/{slug}"),
               write, lambda c: c.get("/api/runs", params={"limit": 5})]
    threads = [threading.Thread(target=load.loop, args=(pstack, call)) for call in callers]
    threads.append(threading.Thread(target=health.loop, args=(pstack, lambda c: c.get("/api/healthz"))))
    for t in threads:
        t.start()
    try:
        time.sleep(1.5)
        stopping = time.monotonic()
        pstack.stop_postgres()
        down_from = time.monotonic()
        time.sleep(PG_DOWN_SECONDS)
        down_until = time.monotonic()
        pstack.start_postgres()
        back = time.monotonic()
        with pstack.client(timeout=30) as c:
            recovered = wait_until(lambda: c.get("/api/datasets", params={"limit": 1}).status_code == 200 and
                                   time.monotonic(), 20, "requests to succeed after Postgres is back")
        time.sleep(2.0)
        end = time.monotonic()
    finally:
        load.stop.set()
        health.stop.set()
        for t in threads:
            t.join(timeout=60)
    assert pstack.pid("gateway") == gateway_pid, "the gateway was restarted"
    before = load.between(0, stopping)
    assert before and all(s in (200, 201) for _, _, s, _, _ in before), before[-5:]
    during = load.ended(down_from + 0.5, down_until)
    assert len(during) >= 4, f"too few requests ended while Postgres was down: {during}"
    for _, _, status, service, text in during:
        assert status == 503 and service == "postgres", (status, service, text)
    after = load.between(recovered + 0.5, end)
    assert after and all(s in (200, 201) for _, _, s, _, _ in after), [i for i in after if i[2] not in (200, 201)]
    checks = health.between(0, end)
    slowest = max(t1 - t0 for t0, t1, *_ in checks)
    assert all(s in (200, 503) for _, _, s, _, _ in checks), [i for i in checks if i[2] not in (200, 503)]
    assert slowest < HEALTH_MAX_SECONDS, f"healthz took {slowest:.1f}s"
    down_checks = health.ended(down_from + 0.5, down_until)
    assert down_checks and all('"postgres":"ok"' not in text for *_, text in down_checks), down_checks[:3]
    print(f"postgres down {down_until - down_from:.1f}s; start took {back - down_until:.1f}s; first success "
          f"{recovered - back:.2f}s after start; {len(during)} requests 503 while down (slowest "
          f"{max(t1 - t0 for t0, t1, *_ in during):.2f}s); healthz: {len(checks)} checks, slowest {slowest:.2f}s")


def test_minio_event_lost_the_nudge_and_the_sweeper_still_import(pstack, pclient, tmp_path):
    if not pstack.has_minio:
        pytest.skip("no MinIO build in the install cache (make up builds it)")
    ds = make_dataset(pclient, unique("fltev"))
    path, n = ohlcv_file(tmp_path / "ohlcv.csv", 20_000)
    data = path.read_bytes()
    pstack.set_webhook(False)  # from here on MinIO sends no event: each upload's event is lost
    try:
        ups = []
        for kind_measurement in ("a", "b"):
            r = pclient.post("/api/uploads", json={"filename": "ohlcv.csv", "size": len(data), "kind": "ohlcv",
                                                   "measurement": f"{ds['dataset_slug']}_{kind_measurement}"})
            assert r.status_code == 201, r.text
            ups.append(r.json())
        for up in ups:
            post_file(up, data, "ohlcv.csv")
        posted = time.monotonic()
        time.sleep(2.0)
        assert [job_now(pclient, u["job_id"])["status"] for u in ups] == ["PENDING", "PENDING"], "an event arrived"
    finally:
        pstack.set_webhook(True)
    nudged, swept = ups
    r = pclient.post(f"/api/uploads/{nudged['upload_id']}/complete", json={})
    assert r.status_code in (200, 202), r.text
    assert r.json()["uploaded"] is True
    job = wait_job_status(pclient, nudged["job_id"], timeout=60)
    assert job["status"] == "COMPLETED" and pstack.count(nudged["measurement"]) == n, job
    # The other one: nobody nudges it; the sweeper looks at PENDING jobs untouched for 30 s.
    job = wait_job_status(pclient, swept["job_id"], timeout=120)
    took = time.monotonic() - posted
    assert job["status"] == "COMPLETED" and pstack.count(swept["measurement"]) == n, job
    assert job["result"]["rows_written"] == n, job
    print(f"lost event: nudge imported at once; sweeper imported {took:.0f}s after the upload")
