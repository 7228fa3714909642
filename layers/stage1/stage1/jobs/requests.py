"""What the jobs API does for a caller (`functions/jobs/app.py`): a job is its creator's and the
admins' (docs/auth.md); another caller gets 404 for it, exactly as for a job that does not exist."""

from __future__ import annotations

from stage1.auth.scopes import Caller
from stage1.core.logging import get_logger, log_fields
from stage1.jobs import dispatch, service
from stage1.jobs.schemas import JobList, JobOut

log = get_logger("jobs.api")


def get(job_id: str, caller: Caller | None) -> JobOut:
    return service.get_job(job_id, caller).out()


def listing(*, status: str | None, job_type: str | None, limit: int, offset: int, caller: Caller | None) -> JobList:
    items, total = service.list_jobs(status=status, job_type=job_type, limit=limit, offset=offset, caller=caller)
    return JobList(items=[j.out() for j in items], total=total, limit=limit, offset=offset)


def cancel(job_id: str, caller: Caller | None) -> JobOut:
    job = service.get_job(job_id, caller)  # 404 unless the caller may see it
    return service.cancel(job.job_id).out()


def retry(job_id: str, caller: Caller | None) -> JobOut:
    """Make a FAILED or CANCELLED job PENDING again and dispatch it."""
    job = service.retry(service.get_job(job_id, caller).job_id)
    try:
        dispatch.dispatch_job(job)
    except Exception as exc:  # the job is PENDING: the sweeper dispatches it again
        log_fields(log, 30, "retry dispatch failed; the sweeper will pick it up", job_id=job.job_id, error=str(exc))
    return job.out()
