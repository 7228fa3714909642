create or replace function stage1_jobs_notify() returns trigger language plpgsql as $$
begin
    perform pg_notify('stage1_jobs', json_build_object(
        'job_id', new.job_id, 'job_type', new.job_type, 'status', new.status,
        'progress', new.progress, 'total', new.total)::text);
    return null;
end
$$;
drop index if exists stage1_jobs_created_by;
alter table stage1_jobs drop column if exists created_by;
