"""Jobs function: poll, list, cancel and retry background jobs (imports, exports)."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import get, post
from litestar.params import PathParameter, QueryParameter

from stage1.core.app import create_app, make_handler
from stage1.core.logging import get_logger, log_fields
from stage1.core.paging import Limit, Offset
from stage1.jobs import dispatch, service
from stage1.jobs.schemas import JobList, JobOut

log = get_logger("jobs.api")
Status = Annotated[Literal["PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"] | None, QueryParameter()]
JobType = Annotated[str | None, QueryParameter(max_length=64)]
JobId = Annotated[str, PathParameter(description="job UUID", max_length=64)]


@get("/api/jobs/{job_id:str}", summary="A job's status and progress", tags=["jobs"], sync_to_thread=True)
def get_job(job_id: JobId) -> JobOut:
    return service.get_job(job_id).out()


@get("/api/questdb/jobs/{job_id:str}", summary="A job (the QuestDB import path's alias)", tags=["jobs"],
     sync_to_thread=True)
def get_questdb_job(job_id: JobId) -> JobOut:
    return service.get_job(job_id).out()


@get("/api/jobs", summary="Jobs, newest first", tags=["jobs"], sync_to_thread=True)
def list_jobs(
    status: Status = None,
    job_type: JobType = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> JobList:
    items, total = service.list_jobs(status=status, job_type=job_type, limit=limit, offset=offset)
    return JobList(items=[j.out() for j in items], total=total, limit=limit, offset=offset)


@post("/api/jobs/{job_id:str}/cancel", summary="Cancel a PENDING or RUNNING job", tags=["jobs"], status_code=200,
      sync_to_thread=True)
def cancel_job(job_id: JobId) -> JobOut:
    return service.cancel(job_id).out()


@post("/api/jobs/{job_id:str}/retry", summary="Run a FAILED or CANCELLED job again", tags=["jobs"],
      status_code=200, sync_to_thread=True)
def retry_job(job_id: JobId) -> JobOut:
    job = service.retry(job_id)
    try:
        dispatch.dispatch_job(job)
    except Exception as exc:  # the job is PENDING: the sweeper dispatches it again
        log_fields(log, 30, "retry dispatch failed; the sweeper will pick it up", job_id=job.job_id, error=str(exc))
    return job.out()


app = create_app([get_job, get_questdb_job, list_jobs, cancel_job, retry_job], title="Stage1 jobs")
handler = make_handler(app)
