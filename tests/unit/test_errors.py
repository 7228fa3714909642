import httpx
import psycopg
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from litestar import get, post
from litestar.params import JSONBody
from litestar.testing import TestClient

from stage1.core.errors import Conflict, ServiceUnavailable, TooManyRequests, to_stage1_error
from stage1.core.structs import Model
from stage1.web.app import create_app


@pytest.mark.parametrize(
    ("exc", "service"),
    [
        (psycopg.OperationalError("connection refused"), "postgres"),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:9900"), "object store"),
        (httpx.ConnectError("refused"), "questdb"),
        (ClientError({"Error": {"Code": "InternalError"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, "PutObject"),
         "object store"),
    ],
)
def test_backing_service_failures_become_503_naming_the_service(exc, service):
    err = to_stage1_error(exc)
    assert isinstance(err, ServiceUnavailable)
    assert err.status_code == 503
    assert err.details["service"] == service


@pytest.mark.parametrize("exc", [
    psycopg.errors.UntranslatableCharacter("unsupported Unicode escape sequence"),
    psycopg.errors.NumericValueOutOfRange("integer out of range"),
    psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"),
])
def test_values_postgres_cannot_hold_are_bad_input(exc):
    err = to_stage1_error(exc)
    assert err.status_code == 400 and err.details == {"postgres": str(exc)}


def test_unknown_errors_hide_their_text():
    err = to_stage1_error(RuntimeError("secret internals"))
    assert err.status_code == 500
    assert "secret" not in err.message


class Body(Model):
    name: str
    size: int


@post("/things", sync_to_thread=False)
def create_thing(data: JSONBody[Body]) -> Body:
    if data.name == "taken":
        raise Conflict("name taken", {"name": data.name})
    return data


@get("/slow", sync_to_thread=False)
def slow() -> None:
    raise TooManyRequests("slow down", retry_after=7)


@get("/pg", sync_to_thread=False)
def pg() -> None:
    raise psycopg.OperationalError("could not connect")


@pytest.fixture
def client():
    with TestClient(create_app([create_thing, slow, pg], title="t")) as c:
        yield c


def test_envelope_for_domain_errors(client):
    r = client.post("/things", json={"name": "taken", "size": 1})
    assert r.status_code == 409
    assert r.json() == {"error": "name taken", "details": {"name": "taken"}}


def test_validation_errors_are_400_with_problems(client):
    r = client.post("/things", json={"name": "x", "size": "big"})
    assert r.status_code == 400
    body = r.json()
    assert body["error"] == "invalid request"
    assert body["details"]["problems"]


def test_malformed_json_is_400(client):
    r = client.post("/things", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert set(r.json()) == {"error", "details"}


def test_unknown_fields_are_ignored(client):
    r = client.post("/things", json={"name": "a", "size": 2, "colour": "red"})
    assert r.status_code == 201
    assert r.json() == {"name": "a", "size": 2}


def test_unknown_route_is_404_envelope(client):
    r = client.get("/nope")
    assert r.status_code == 404
    assert set(r.json()) == {"error", "details"}


def test_retry_after_header(client):
    r = client.get("/slow")
    assert r.status_code == 429
    assert r.headers["retry-after"] == "7"


def test_postgres_down_is_503(client):
    r = client.get("/pg")
    assert r.status_code == 503
    assert r.json()["details"]["service"] == "postgres"


def test_responses_carry_a_request_id(client):
    r = client.get("/slow", headers={"x-request-id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"


def test_questdb_client_unreachable_is_503_questdb():
    import questdb

    conf = "http::addr=127.0.0.1:1;retry_timeout=0;"  # nothing listens on port 1
    with pytest.raises(questdb.QuestDBError) as info, questdb.Sender.from_conf(conf) as sender:
        sender.row("t", columns={"x": 1.0}, at=questdb.TimestampNanos(1))
        sender.flush()
    err = to_stage1_error(info.value)
    assert err.status_code == 503 and err.details["service"] == "questdb"
