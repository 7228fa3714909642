-- Live job events: every insert, and every update that changes what a watcher sees (status,
-- progress, total), sends a small JSON payload on the channel `stage1_jobs`. The local gateway
-- LISTENs and fans the payloads out as Server-Sent Events on GET /api/events (docs/client.md).
-- NOTIFY is transactional: a payload is delivered when (and only if) its transaction commits.
create or replace function stage1_jobs_notify() returns trigger language plpgsql as $$
begin
    perform pg_notify('stage1_jobs', json_build_object(
        'job_id', new.job_id, 'job_type', new.job_type, 'status', new.status,
        'progress', new.progress, 'total', new.total)::text);
    return null;
end
$$;

create trigger stage1_jobs_notify_insert after insert on stage1_jobs
    for each row execute function stage1_jobs_notify();

-- Lease renewals and payload patches alone are not news to a watcher.
create trigger stage1_jobs_notify_update after update on stage1_jobs
    for each row
    when (old.status is distinct from new.status or old.progress is distinct from new.progress
          or old.total is distinct from new.total)
    execute function stage1_jobs_notify();
