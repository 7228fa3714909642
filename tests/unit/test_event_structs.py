"""Each typed event decodes the recorded events in tests/events/ (and refuses other shapes), and
the importer's result encodes to the keys clients read today."""

from __future__ import annotations

import copy

import msgspec
import pytest

from stage1.auth.authorizer import token_of
from stage1.auth.events import AuthorizerEvent, decode_authorizer_event
from stage1.imports.events import S3Event, decode_importer_event
from stage1.imports.result import ImportResult
from stage1.jobs import dispatch
from stage1.jobs.events import JobEvent, ScheduledEvent, decode_as, decode_job_event, job_event, to_wire
from stage1.jobs.worker import Outcome, answer, decode_outcome


def test_the_recorded_s3_event_decodes_with_its_key_url_decoded(event):
    raw = event("s3_object_created.json")
    raw["Records"][0]["s3"]["object"]["key"] = "uploads/a+b%2Bc%20d/data.csv"
    decoded = decode_importer_event(raw)
    assert isinstance(decoded, S3Event)
    (record,) = decoded.Records
    assert record.created and record.eventName == "ObjectCreated:CompleteMultipartUpload"
    assert (record.s3.bucket.name, record.s3.object.key, record.s3.object.size) == (
        "stage1-uploads", "uploads/a b+c d/data.csv", 1024)
    # Decoding does not touch the payload: the local webhook forwards it as it came.
    assert raw["Records"][0]["s3"]["object"]["key"] == "uploads/a+b%2Bc%20d/data.csv"


def test_minio_records_decode_like_aws_ones():
    minio = {"EventName": "s3:ObjectCreated:Put", "Key": "stage1-uploads/uploads/x/data.csv",
             "Records": [{"eventName": "s3:ObjectCreated:Put", "eventVersion": "2.0", "eventSource": "minio:s3",
                          "s3": {"bucket": {"name": "b"}, "object": {"key": "uploads%2Fx%2Fdata.csv", "size": 5}}}]}
    decoded = decode_importer_event(minio)
    assert isinstance(decoded, S3Event) and decoded.Records[0].s3.object.key == "uploads/x/data.csv"
    removed = copy.deepcopy(minio)
    removed["Records"][0]["eventName"] = "s3:ObjectRemoved:Delete"
    assert not decode_importer_event(removed).Records[0].created


@pytest.mark.parametrize("bad", [
    {"Records": [{"eventName": "ObjectCreated:Put"}]},  # no s3 entity
    {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"object": {"key": 7}}}]},
    {"Records": "nope"}, {"job_id": 12}, {"something": "else"}, [], "Records", None,
])
def test_other_shapes_are_not_importer_events(bad):
    assert decode_importer_event(bad) is None


def test_the_job_event_is_built_in_one_place_and_round_trips():
    wire = to_wire(job_event("j1", "import"))
    assert wire == {"job_id": "j1", "job_type": "import"}
    assert decode_importer_event(wire) == decode_job_event(wire) == JobEvent(job_id="j1", job_type="import")
    assert decode_job_event({"job_id": "j2"}) == JobEvent(job_id="j2")  # job_type is optional
    assert decode_job_event({"job_type": "import"}) is None and decode_job_event("j1") is None
    assert dispatch.job_event  # dispatch's dict is this Struct encoded (tests/unit/test_dispatch.py)


def test_scheduled_events_of_eventbridge_and_the_local_loop():
    eventbridge = {"version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events",
                   "account": "123456789012", "time": "2026-01-01T00:00:00Z", "region": "eu-west-1",
                   "resources": [], "detail": {}}
    assert decode_as(eventbridge, ScheduledEvent) == ScheduledEvent(source="aws.events", detail_type="Scheduled Event")
    assert decode_as({"source": "local.sweeper"}, ScheduledEvent).source == "local.sweeper"
    assert decode_as([1], ScheduledEvent) is None


def test_the_recorded_authorizer_event_decodes(event):
    decoded = decode_authorizer_event(event("http_api_v2_authorizer.json"))
    assert isinstance(decoded, AuthorizerEvent)
    assert decoded.routeKey == "GET /api/datasets" and decoded.version == "2.0"
    assert token_of(decoded) == "s1_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    assert decoded.headers["x-stage1-token"] == token_of(decoded)


@pytest.mark.parametrize("bad", [{"headers": ["x"]}, {"identitySource": [None]}, {"headers": {"a": 1}}, [], None])
def test_other_shapes_are_not_authorizer_events(bad):
    assert decode_authorizer_event(bad) is None and token_of(bad) is None


def test_the_import_result_has_the_keys_clients_read():
    result = ImportResult(measurement="m", kind="ohlcv", format="csv", rows=2, rows_written=2, table_rows=5, bytes=10,
                          first_ts=1, last_ts=2, columns=["ts"], seconds=0.1, wal_applied=True,
                          staging_copy_seconds=0.01, upload_id=None)
    keys = ["measurement", "kind", "format", "rows", "rows_written", "table_rows", "bytes", "first_ts", "last_ts",
            "columns", "seconds", "wal_applied", "staging_copy_seconds", "upload_id"]
    assert list(msgspec.to_builtins(result)) == keys  # upload_id stays, null; dataset only for dataset imports
    with_dataset = msgspec.structs.replace(result, dataset={"dataset_id": "d", "ohlcv_rows": 5})
    assert list(msgspec.to_builtins(with_dataset)) == [*keys, "dataset"]
    assert msgspec.convert(msgspec.to_builtins(with_dataset), ImportResult) == with_dataset


def test_the_worker_outcome_round_trips_through_json():
    outcome = Outcome(job_id="j", status="PENDING", service="questdb", error="down")
    assert answer(outcome) == {"job_id": "j", "status": "PENDING", "service": "questdb", "error": "down"}
    assert decode_outcome(msgspec.json.decode(msgspec.json.encode(answer(outcome)))) == outcome
    assert decode_outcome(None) is None and decode_outcome({"status": "x"}) is None
