"""Which function runs a job, and how invoke_async/invoke_sync reach it (the in-gateway runner)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stage1.jobs import dispatch
from stage1.jobs.service import Job


def job(job_type: str, payload: dict) -> Job:
    now = datetime.now(UTC)
    return Job(job_id="j1", job_type=job_type, status="PENDING", idempotency_key=None, payload=payload, progress=0,
               total=None, result=None, error=None, attempts=0, max_attempts=3, lease_owner=None,
               lease_expires_at=None, created_at=now, updated_at=now, started_at=None, completed_at=None)


def test_function_for_a_job():
    assert dispatch.function_for(job("import", {})) == "ImporterFunction"
    assert dispatch.function_for(job("export", {})) == "ExporterFunction"
    assert dispatch.function_for(job("anything", {"function": "OtherFunction"})) == "OtherFunction"
    assert dispatch.function_for(job("unknown", {})) is None
    assert dispatch.function_env_name("ImporterFunction") == "STAGE1_FN_IMPORTERFUNCTION"


def test_dispatch_goes_to_the_local_runner_inside_a_gateway():
    calls = []
    dispatch.set_local_runner(lambda f, e, w: calls.append((f, e, w)) or ({"ok": True} if w else None))
    try:
        dispatch.dispatch_job(job("import", {}))
        assert dispatch.invoke_sync("ImporterFunction", {"job_id": "j2"}) == {"ok": True}
        assert calls == [("ImporterFunction", {"job_id": "j1", "job_type": "import"}, False),
                         ("ImporterFunction", {"job_id": "j2"}, True)]
        with pytest.raises(ValueError):
            dispatch.invoke_async("../etc", {})
        with pytest.raises(ValueError):
            dispatch.dispatch_job(job("unknown", {}))
    finally:
        dispatch.set_local_runner(None)
