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

from stage1.jobs import requests as jobs
from stage1.jobs.schemas import JobList, JobOut
from stage1.web.app import create_app, make_handler
from stage1.web.guards import request_caller
from stage1.web.params import Limit, Offset

Status = Annotated[Literal["PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"] | None, QueryParameter()]
JobType = Annotated[str | None, QueryParameter(max_length=64)]
JobId = Annotated[str, PathParameter(description="job UUID", max_length=64)]


@get("/api/jobs/{job_id:str}", summary="A job's status and progress", tags=["jobs"], sync_to_thread=True)
def get_job(request: Request[Any, Any, Any], job_id: JobId) -> JobOut:
    return jobs.get(job_id, request_caller(request))


@get("/api/questdb/jobs/{job_id:str}", summary="A job (the QuestDB import path's alias)", tags=["jobs"],
     sync_to_thread=True)
def get_questdb_job(request: Request[Any, Any, Any], job_id: JobId) -> JobOut:
    return jobs.get(job_id, request_caller(request))


@get("/api/jobs", summary="Jobs, newest first (the caller's own; every job for admin tokens)", tags=["jobs"],
     sync_to_thread=True)
def list_jobs(
    request: Request[Any, Any, Any],
    status: Status = None,
    job_type: JobType = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> JobList:
    return jobs.listing(status=status, job_type=job_type, limit=limit, offset=offset, caller=request_caller(request))


@post("/api/jobs/{job_id:str}/cancel", summary="Cancel a PENDING or RUNNING job", tags=["jobs"], status_code=200,
      sync_to_thread=True)
def cancel_job(request: Request[Any, Any, Any], job_id: JobId) -> JobOut:
    return jobs.cancel(job_id, request_caller(request))


@post("/api/jobs/{job_id:str}/retry", summary="Run a FAILED or CANCELLED job again", tags=["jobs"],
      status_code=200, sync_to_thread=True)
def retry_job(request: Request[Any, Any, Any], job_id: JobId) -> JobOut:
    return jobs.retry(job_id, request_caller(request))


app = create_app([get_job, get_questdb_job, list_jobs, cancel_job, retry_job], title="Stage1 jobs")
handler = make_handler(app)
