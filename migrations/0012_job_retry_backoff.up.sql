-- Imports interrupted by an outage of a backing service (issue 11, hole 9): the job is retried with
-- exponential backoff until a deadline measured from the start of the outage, not a few attempts
-- in seconds. Maintained by stage1.jobs.service.release; see docs/imports.md.
alter table stage1_jobs
    add column retry_at timestamptz,      -- a released PENDING job is not dispatched again before this
    add column outage_since timestamptz;  -- when the outage that keeps releasing the job began
