"""Pieces of the client and of the events route that need no running stack: SSE parsing, the error
envelope, configuration, the broker's fan-out, the route's refusals, CSV → Parquet, and the
client's fall-back to polling when a deployment has no event stream."""

from __future__ import annotations

import asyncio
import json

import httpx
import pyarrow.parquet as pq
import pytest

from stage1_client import ApiError, Client, config_from_env
from stage1_client.jobs import EventsUnavailable
from stage1_client.sse import Message, parse
from stage1_local import events
from stage1_local.gateway import Gateway

JOB = "4f1c7f52-3d43-4a8e-9d7e-0a8c1f0e2b11"


def _job(status: str, progress: int = 0) -> dict:
    return {"job_id": JOB, "job_type": "import", "status": status, "progress": progress, "total": 10, "result": None,
            "error": None, "attempts": 1, "created_at": "2026-01-01T00:00:00.000Z",
            "updated_at": f"2026-01-01T00:00:0{progress % 10}.000Z", "started_at": None, "completed_at": None}


def test_sse_parser_follows_the_wire_format():
    lines = ["retry: 3000", "event: ready", 'data: {"a":1}', "", ": heartbeat", "", "id: 7", "event: job",
             "data: line1", "data: line2", "", "data: no event name", "", "event: job"]
    messages = list(parse(lines))
    assert messages == [
        Message("ready", '{"a":1}', None),
        Message(None, comment="heartbeat"),
        Message("job", "line1\nline2", "7"),
        Message("message", "no event name", "7"),
    ]


def test_api_error_from_envelope_and_from_other_bodies():
    e = ApiError.from_response(404, b'{"error": "run not found", "details": {"run_id": "x"}}')
    assert (e.status, e.message, e.details) == (404, "run not found", {"run_id": "x"})
    assert e.one_line() == '404 run not found {"run_id": "x"}'
    e = ApiError.from_response(502, b"<html>\nBad gateway</html>", reason="Bad Gateway")
    assert (e.status, e.message, e.details) == (502, "<html>", None)
    e = ApiError.from_response(503, b"", reason="Service Unavailable")
    assert e.message == "Service Unavailable"
    e = ApiError.from_response(429, b'{"message": "Too Many Requests"}')  # API Gateway's own answer
    assert e.message == "Too Many Requests"
    long = ApiError(400, "bad\ninput", {"problems": ["x" * 500]})
    assert "\n" not in str(long) and len(str(long)) < 330


def test_config_from_env_order(tmp_path):
    env_file = tmp_path / "stage1.env"
    env_file.write_text("STAGE1_GATEWAY_URL=http://127.0.0.1:3999/\nSTAGE1_TOKEN=from-file\n")
    assert config_from_env({}, default_file=None) == ("http://127.0.0.1:3000", "")
    assert config_from_env({}, default_file=env_file) == ("http://127.0.0.1:3999", "from-file")
    assert config_from_env({"STAGE1_ENV_FILE": str(env_file)}) == ("http://127.0.0.1:3999", "from-file")
    assert config_from_env({"STAGE1_ENV_FILE": str(env_file), "STAGE1_URL": "https://api.example",
                            "STAGE1_TOKEN": "env"}) == ("https://api.example", "env")
    assert config_from_env({"STAGE1_ENV_FILE": str(env_file), "STAGE1_TOKEN": "env"}) == (
        "http://127.0.0.1:3999", "env")


def test_broker_fans_out_filters_and_drops_a_stuck_subscriber(monkeypatch):
    async def scenario() -> None:
        broker = events.Broker("postgresql://unused")
        everyone = broker.subscribe(None)
        only = broker.subscribe(frozenset({JOB}))
        broker.publish(json.dumps({"job_id": JOB, "status": "RUNNING"}))
        broker.publish(json.dumps({"job_id": "other", "status": "RUNNING"}))
        broker.publish("not json")
        assert everyone.queue.qsize() == 2 and only.queue.qsize() == 1
        ids = [everyone.queue.get_nowait()[0], everyone.queue.get_nowait()[0]]
        assert ids == sorted(ids)  # event ids increase
        monkeypatch.setattr(events, "QUEUE_SIZE", 2)
        stuck = broker.subscribe(None)
        for _ in range(3):
            broker.publish(json.dumps({"job_id": JOB, "status": "RUNNING"}))
        assert stuck not in broker.subscribers
        assert stuck.queue.get_nowait() is events._CLOSED  # its stream ends, the client reconnects
        # The listener lost Postgres: every stream ends, a full one too.
        full = broker.subscribe(None)
        for _ in range(2):
            broker.publish(json.dumps({"job_id": JOB, "status": "RUNNING"}))
        broker._drop_all()
        assert broker.subscribers == set()
        assert full.queue.get_nowait() is events._CLOSED

    asyncio.run(scenario())


def test_sse_formatting():
    assert events.sse("job", {"a": 1}, id=3) == b'id: 3\nevent: job\ndata: {"a":1}\n\n'
    assert events.sse(comment="heartbeat") == b": heartbeat\n\n"


@pytest.mark.parametrize(("query", "status"), [("", 503), ("job_id=nope", 400), ("heartbeat=100", 400)])
def test_events_route_refusals(query, status):
    """Without its LISTEN connection the route answers 503 (clients poll); bad parameters are 400."""
    gateway = Gateway(routes=[])
    events.install(gateway)  # the broker's loop is not started: not listening

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=gateway)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            return await client.get(f"/api/events?{query}")

    r = asyncio.run(call())
    assert r.status_code == status
    assert set(r.json()) == {"error", "details"}


def test_csv_to_parquet_keeps_types_across_blocks(tmp_path, monkeypatch):
    from stage1_client import convert

    monkeypatch.setattr(convert, "BLOCK_BYTES", 4096)  # many blocks
    src = tmp_path / "p.csv"
    with open(src, "w") as f:
        f.write('"timestamp","bar_index","fold_number","prediction","target","thr"\n')
        for i in range(5000):
            thr = "" if i < 3000 else "1.0"  # empty in the first blocks, numbers later
            f.write(f"{1_700_000_000 + i},{i},{i // 1000},{i / 5000},{i % 2},{thr}\n")
    rows = convert.csv_to_parquet(src, tmp_path / "p.parquet", int_columns=("timestamp", "bar_index", "fold_number"))
    table = pq.read_table(tmp_path / "p.parquet")
    assert rows == table.num_rows == 5000
    assert str(table.schema.field("bar_index").type) == "int64"
    assert str(table.schema.field("thr").type) == "double"
    assert table.column("thr").null_count == 3000
    assert not (tmp_path / "p.parquet.part").exists()


def test_watch_falls_back_to_polling_without_an_event_stream():
    """A deployment without /api/events (Lambda): 404 there, and the job is polled instead."""
    calls: list[str] = []
    states = iter(["PENDING", "RUNNING", "COMPLETED"])

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path == "/api/events":
            return httpx.Response(404, json={"error": "no such route", "details": None})
        return httpx.Response(200, json=_job(next(states)))

    with Client("http://api.test", "t", transport=httpx.MockTransport(handler)) as c:
        seen: list[str] = []
        job = c.jobs.watch(JOB, poll_interval=0.01, on_update=lambda j: seen.append(j.status))
        assert job.status == "COMPLETED" and seen == ["PENDING", "RUNNING", "COMPLETED"]
        assert c.jobs.events_supported is False
        assert calls[0] == "/api/events" and calls.count("/api/events") == 1
        with pytest.raises(EventsUnavailable):
            next(iter(c.jobs.events()))


def test_client_retries_429_then_raises_the_envelope():
    answers = iter([httpx.Response(429, headers={"Retry-After": "0"}, json={"error": "rate limited", "details": {}}),
                    httpx.Response(400, json={"error": "invalid request", "details": {"problems": ["x"]}})])
    transport = httpx.MockTransport(lambda r: next(answers))
    with Client("http://api.test", "t", transport=transport) as c, pytest.raises(ApiError) as info:
        c.datasets.upsert({"dataset_slug": "x"})
    assert (info.value.status, info.value.details) == (400, {"problems": ["x"]})


def test_ids_are_checked_before_any_request():
    with Client("http://api.test", "t", transport=httpx.MockTransport(lambda r: httpx.Response(500))) as c:
        for bad in ("../etc", "a/b", ""):
            with pytest.raises(ApiError) as info:
                c.datasets.get(bad)
            assert info.value.status == 0
        with pytest.raises(ApiError):
            c.jobs.get("not-a-uuid")


def _multipart_api(sizes: list[int], part_size: int, completes: list[dict]):
    upload = "7b1c7f52-3d43-4a8e-9d7e-0a8c1f0e2b11"

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/uploads":
            parts = [{"part_number": n, "url": f"http://store.test/part/{n}", "size": s}
                     for n, s in enumerate(sizes, start=1)]
            return httpx.Response(201, json={
                "upload_id": upload, "job_id": JOB, "url": parts[0]["url"], "method": "PUT",
                "expires_at": "2026-01-01T01:00:00Z", "object_key": f"uploads/{upload}/data.csv",
                "measurement": "m", "kind": "raw", "format": "csv", "multipart": True, "part_size": part_size,
                "parts": parts, "complete_url": f"/api/uploads/{upload}/complete", "poll_url": f"/api/jobs/{JOB}"})
        assert request.url.path == f"/api/uploads/{upload}/complete", request.url.path
        completes.append(json.loads(request.content))
        return httpx.Response(200, json={"upload_id": upload, "job_id": JOB, "status": "PENDING", "uploaded": True,
                                         "size": sum(sizes), "poll_url": f"/api/jobs/{JOB}", "message": "ok"})

    return handler


def _signed_store(sizes: list[int], received: dict[int, bytes]):
    """A store whose part URLs, like S3's with a signed Content-Length, refuse any other length."""

    def handler(request: httpx.Request) -> httpx.Response:
        number = int(request.url.path.rsplit("/", 1)[1])
        body = request.read()
        if request.headers.get("content-length") != str(sizes[number - 1]) or len(body) != sizes[number - 1]:
            return httpx.Response(403, text="<Error><Code>SignatureDoesNotMatch</Code></Error>")
        received[number] = body
        return httpx.Response(200, headers={"ETag": f'"etag{number}"'})

    return handler


def test_multipart_parts_are_sent_at_exactly_the_lengths_the_server_signed(tmp_path):
    """The client sends each part's own signed `size` (here not a multiple of part_size, which the
    client used to assume), so every PUT matches its URL's signature; the file is covered once."""
    data = bytes(range(256)) * 100  # 25,600 bytes
    path = tmp_path / "big.csv"
    path.write_bytes(data)
    sizes, completes, received = [12_000, 8_000, 5_600], [], {}
    with Client("http://api.test", "t", transport=httpx.MockTransport(_multipart_api(sizes, 12_000, completes))) as c:
        c._store = httpx.Client(transport=httpx.MockTransport(_signed_store(sizes, received)))
        progress: list[int] = []
        up = c.uploads.upload(path, kind="raw", measurement="m", on_bytes=lambda done, total: progress.append(done))
    assert up.multipart and up.parts == 3 and progress[-1] == len(data)
    assert b"".join(received[n] for n in (1, 2, 3)) == data
    assert completes == [{"parts": [{"part_number": n, "etag": f'"etag{n}"'} for n in (1, 2, 3)]}]


def test_parts_that_do_not_cover_the_file_are_refused_before_any_put(tmp_path):
    path = tmp_path / "big.csv"
    path.write_bytes(b"x" * 25_600)
    sizes, completes, received = [12_000, 8_000], [], {}  # 20,000 of 25,600 bytes
    with Client("http://api.test", "t", transport=httpx.MockTransport(_multipart_api(sizes, 12_000, completes))) as c:
        c._store = httpx.Client(transport=httpx.MockTransport(_signed_store(sizes, received)))
        with pytest.raises(ApiError) as info:
            c.uploads.upload(path, kind="raw", measurement="m")
    assert "do not cover" in info.value.message and info.value.details["covered"] == 20_000
    assert received == {} and completes == []


def test_a_page_of_rows_becomes_a_frame_in_the_api_column_order():
    from stage1_client.frames import to_frame
    from stage1_wire.datasets import Rows

    page = Rows(measurement="m", columns=["timestamp", "close", "open"], total=2, limit=2, offset=0, next_offset=None,
                rows=[{"open": 1.0, "timestamp": 10, "close": 2.0}, {"timestamp": 11, "close": 3.0, "open": 4.0}])
    frame = to_frame(page)
    assert list(frame.columns) == ["timestamp", "close", "open"]
    assert frame["close"].tolist() == [2.0, 3.0] and frame["timestamp"].tolist() == [10, 11]
