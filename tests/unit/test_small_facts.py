"""One of each small fact (issue 12): one timestamp format for every `*_at` answer, one UUID parser,
one WHERE builder, one token header name."""

from __future__ import annotations

import pathlib
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest

from stage1.core.errors import BadRequest
from stage1.core.refs import as_uuid, parse_ref, parse_uuid
from stage1.core.times import iso
from stage1.core.where import Where
from stage1.jobs.service import Job

ROOT = pathlib.Path(__file__).resolve().parents[2]
WHEN = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)


def test_string_timestamps_are_spelled_like_msgspec_datetimes() -> None:
    # A `datetime` field (datasets, runs, simulations) and a `str` one (jobs, tokens, uploads) agree.
    assert iso(WHEN) == msgspec.json.encode(WHEN).decode().strip('"') == "2026-03-04T05:06:07.123456Z"
    assert iso(WHEN.astimezone(timezone(timedelta(hours=2)))) == "2026-03-04T05:06:07.123456Z"
    assert iso(WHEN.replace(tzinfo=None)) == "2026-03-04T05:06:07.123456Z"  # naive = UTC
    assert iso(None) is None


def test_job_answers_use_the_one_format() -> None:
    """Jobs answered in milliseconds before (`...07.123Z`), tokens and resources in microseconds."""
    job = Job(job_id=str(uuid.uuid4()), job_type="import", status="PENDING", idempotency_key=None, payload={},
              progress=0, total=None, result=None, error=None, attempts=0, max_attempts=3, lease_owner=None,
              lease_expires_at=None, created_at=WHEN, updated_at=WHEN, started_at=None, completed_at=None)
    out = job.out()
    assert out.created_at == out.updated_at == "2026-03-04T05:06:07.123456Z" and out.started_at is None


def test_one_uuid_parser() -> None:
    value = uuid.uuid4()
    assert as_uuid(str(value)) == as_uuid(value) == value
    assert as_uuid("nope") is None and as_uuid(None) is None and as_uuid(12) is None
    with pytest.raises(BadRequest) as raised:
        parse_uuid("nope", "run_id")
    assert raised.value.details == {"field": "run_id", "value": "nope"}
    assert parse_ref(str(value)) == ("id", value) and parse_ref("btc_1h") == ("slug", "btc_1h")
    with pytest.raises(BadRequest):
        parse_ref("Not A Slug")
    # No second parser: outside core/refs.py, uuid.UUID() only converts ids the server made itself
    # (an Owner's id, an upload's own id), never a client's text behind a try/except of its own.
    calls = {p.name for p in (ROOT / "layers" / "stage1" / "stage1").rglob("*.py")
             if p.name != "refs.py" and re.search(r"uuid\.UUID\((?!\"|')", p.read_text())}
    assert calls <= {"ownership.py", "tables.py"}


def test_where_builds_bind_parameters_only() -> None:
    where = Where(limit=5).eq("status", "status", "FAILED").eq("job_type", "job_type", None)
    where.compare("ts", ">=", "from", 10).add("(a ilike %(p)s or b ilike %(p)s)", p="%x%")
    assert where.sql() == " where status = %(status)s and ts >= %(from)s and (a ilike %(p)s or b ilike %(p)s)"
    assert where.params == {"limit": 5, "status": "FAILED", "from": 10, "p": "%x%"}
    assert Where().sql() == ""
    with pytest.raises(ValueError):
        Where().compare("a", "; drop table x --", "v", 1)


def test_the_token_header_is_defined_once() -> None:
    defined = [str(p.relative_to(ROOT)) for base in ("layers", "local", "functions")
               for p in (ROOT / base).rglob("*.py")
               if re.search(r"^TOKEN_HEADER\s*=\s*['\"b]", p.read_text(), re.MULTILINE)]
    assert defined == ["layers/client/stage1_wire/auth.py"]
