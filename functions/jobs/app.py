"""Jobs function: poll, list, cancel and retry background jobs (imports, exports).

A job is its creator's (the token whose request made it: `stage1_jobs.created_by`) and the admins':
another token gets 404 for it, exactly as for a job that does not exist, and does not see it in
lists, so neither a job's result (presigned download URLs) nor its existence leaks. Jobs without a
creator (made before migration 0013) are admin-only. See docs/auth.md.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Request, get, post
from litestar.params import PathParameter, QueryParameter

from stage1.auth.scopes import Caller, caller_of
from stage1.core.app import create_app, make_handler
from stage1.core.logging import get_logger, log_fields
from stage1.core.paging import Limit, Offset
from stage1.jobs import dispatch, service
from stage1.jobs.schemas import JobList, JobOut

log = get_logger("jobs.api")
Status = Annotated[Literal["PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"] | None, QueryParameter()]
JobType = Annotated[str | None, QueryParameter(max_length=64)]
JobId = Annotated[str, PathParameter(description="job UUID", max_length=64)]


def _caller(request: Request[Any, Any, Any]) -> Caller | None:
    return caller_of(request.scope)  # type: ignore[arg-type]


@get("/api/jobs/{job_id:str}", summary="A job's status and progress", tags=["jobs"], sync_to_thread=True)
def get_job(request: Request[Any, Any, Any], job_id: JobId) -> JobOut:
    return service.get_job(job_id, _caller(request)).out()


@get("/api/questdb/jobs/{job_id:str}", summary="A job (the QuestDB import path's alias)", tags=["jobs"],
     sync_to_thread=True)
def get_questdb_job(request: Request[Any, Any, Any], job_id: JobId) -> JobOut:
    return service.get_job(job_id, _caller(request)).out()


@get("/api/jobs", summary="Jobs, newest first (the caller's own; every job for admin tokens)", tags=["jobs"],
     sync_to_thread=True)
def list_jobs(
    request: Request[Any, Any, Any],
    status: Status = None,
    job_type: JobType = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> JobList:
    items, total = service.list_jobs(status=status, job_type=job_type, limit=limit, offset=offset,
                                     caller=_caller(request))
    return JobList(items=[j.out() for j in items], total=total, limit=limit, offset=offset)


@post("/api/jobs/{job_id:str}/cancel", summary="Cancel a PENDING or RUNNING job", tags=["jobs"], status_code=200,
      sync_to_thread=True)
def cancel_job(request: Request[Any, Any, Any], job_id: JobId) -> JobOut:
    job = service.get_job(job_id, _caller(request))  # 404 unless the caller may see it
    return service.cancel(job.job_id).out()


@post("/api/jobs/{job_id:str}/retry", summary="Run a FAILED or CANCELLED job again", tags=["jobs"],
      status_code=200, sync_to_thread=True)
def retry_job(request: Request[Any, Any, Any], job_id: JobId) -> JobOut:
    job = service.retry(service.get_job(job_id, _caller(request)).job_id)
    try:
        dispatch.dispatch_job(job)
    except Exception as exc:  # the job is PENDING: the sweeper dispatches it again
        log_fields(log, 30, "retry dispatch failed; the sweeper will pick it up", job_id=job.job_id, error=str(exc))
    return job.out()


app = create_app([get_job, get_questdb_job, list_jobs, cancel_job, retry_job], title="Stage1 jobs")
handler = make_handler(app)
