drop index if exists walkforward_runs_job;
alter table walkforward_runs drop column if exists job_id, drop column if exists upload_id;
