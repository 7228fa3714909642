-- Who made a job (issue 11): the API token whose request created it. A job's detail, result (with its
-- presigned download URL), cancel and retry are for that token and for admin tokens only; other tokens
-- get 404 and do not see it in lists (stage1.jobs.service, docs/auth.md). Null for jobs made before
-- this migration and for jobs made with auth turned off: those are admin-only.
alter table stage1_jobs
    add column created_by uuid references stage1_api_tokens (token_id) on delete set null;
create index stage1_jobs_created_by on stage1_jobs (created_by, created_at desc);

-- The live event stream (GET /api/events) filters the same way, so each notification names the creator.
create or replace function stage1_jobs_notify() returns trigger language plpgsql as $$
begin
    perform pg_notify('stage1_jobs', json_build_object(
        'job_id', new.job_id, 'job_type', new.job_type, 'status', new.status,
        'progress', new.progress, 'total', new.total, 'created_by', new.created_by)::text);
    return null;
end
$$;
