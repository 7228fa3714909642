"""One pass of the sweeper (a scheduled function on AWS, a loop in the local gateway):

1. RUNNING jobs whose lease expired (their worker died) go back to PENDING while attempts remain
   and are dispatched again; the others become FAILED.
2. PENDING jobs nobody touched for `stale_after` seconds (a lost event or dispatch), or whose
   backoff after an outage is over (`retry_at`), are looked at again: a per-type check says whether
   their input is ready (dispatch), not yet (wait), or never coming (the check fails the job).
3. Staging tables of import jobs that are finished (or gone) are dropped: a worker that died, or
   could not reach QuestDB when it failed, leaves its staging table behind.
4. Rate buckets that are full again are deleted (stage1.auth.buckets: a missing row is a full bucket).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stage1.auth import buckets
from stage1.core import db
from stage1.core.logging import get_logger, log_fields
from stage1.jobs import dispatch, service
from stage1.jobs.service import Job
from stage1.timeseries import ownership as own
from stage1.timeseries.kinds import drop_table

log = get_logger("jobs.sweeper")

ReadyCheck = Callable[[Job], "bool | None"]


def sweep_once(checks: dict[str, ReadyCheck] | None = None, *, stale_after: int = 30) -> dict[str, Any]:
    checks = checks or {}
    swept = service.sweep()
    redispatched = 0
    for job in swept.requeued:
        redispatched += _dispatch(job)
    stale_dispatched, waiting = 0, []
    for job_type in dispatch.JOB_FUNCTIONS:
        for job in service.stale_pending(job_type, stale_after):
            check = checks.get(job.job_type)
            try:
                ready = check(job) if check else True
            except Exception as exc:  # one bad job must not stop the sweep
                log_fields(log, 40, "ready check failed", job_id=job.job_id, error=str(exc)[:300])
                ready = None
            if ready:
                stale_dispatched += _dispatch(job)
            elif ready is None:
                waiting.append(job.job_id)
    service.touch(waiting)
    from stage1.runs.service import sweep_abandoned  # runs a killed POST /api/runs left PENDING (hole 6)

    sweep_abandoned()  # logs what it did
    from stage1.uploads.chunks import sweep as sweep_chunked  # chunks: lost events, dead invocations, expiry

    try:
        chunked = sweep_chunked()
    except Exception as exc:  # the sweep goes on
        log_fields(log, 40, "chunked upload sweep failed", error=str(exc)[:300])
        chunked = {"chunked_expired": 0, "chunks_redispatched": 0}  # the same keys on every sweep
    drop_orphan_staging()
    from stage1.simulations.from_upload import settle_waiting  # simulations whose trades import ended

    try:
        settle_waiting()
    except Exception as exc:  # the sweep goes on
        log_fields(log, 40, "simulation settle failed", error=str(exc)[:300])
    try:
        buckets.sweep()  # logs what it did
    except Exception as exc:  # the sweep goes on
        log_fields(log, 40, "rate bucket sweep failed", error=str(exc)[:300])
    out = {"requeued": len(swept.requeued), "failed": len(swept.failed), "redispatched": redispatched,
           "stale_dispatched": stale_dispatched, "waiting": len(waiting), **chunked}
    if any(out.values()):
        # Uploads still waiting for their object are routine: only a pass that acted is INFO.
        acted = any(v for k, v in out.items() if k != "waiting")
        log_fields(log, 20 if acted else 10, "sweep", **out)
    return out


def _dispatch(job: Job) -> int:
    try:
        dispatch.dispatch_job(job)
        service.touch([job.job_id])
        return 1
    except Exception as exc:  # the next sweep tries again
        log_fields(log, 40, "dispatch failed", job_id=job.job_id, error=str(exc)[:300])
        return 0


_ORPHAN_STAGING = (
    "select t.table_name, t.owner_id from stage1_questdb_tables t left join stage1_jobs j on j.job_id = t.owner_id "
    "where t.role = 'staging' and t.owner_kind = 'job' and (j.job_id is null or j.status in "
    "('COMPLETED', 'FAILED', 'CANCELLED')) and (t.owner_id = %(job)s or (%(job)s::uuid is null "
    "and t.created_at < now() - interval '1 minute')) order by t.created_at limit %(limit)s"
)


def drop_orphan_staging(limit: int = 20, *, job_id: str | None = None) -> int:
    """Drop the staging tables of finished import jobs (each registered to its job, owned), then
    their registrations; with `job_id`, that finished job's only (at once: an expired upload). A
    table QuestDB cannot drop now stays registered for the next pass."""
    try:
        with db.connection() as conn:
            rows = conn.execute(_ORPHAN_STAGING, {"job": job_id, "limit": limit}).fetchall()
    except Exception as exc:  # the rest of the sweep must not depend on this pass
        log_fields(log, 30, "staging cleanup skipped", error=str(exc)[:300])
        return 0
    dropped = 0
    for row in rows:
        try:
            drop_table(row["table_name"])
            with db.connection() as conn:
                own.release(conn, own.Owner("job", row["owner_id"]), [row["table_name"]])
            dropped += 1
        except Exception as exc:
            log_fields(log, 30, "staging table not dropped", table=row["table_name"], error=str(exc)[:300])
    return dropped
