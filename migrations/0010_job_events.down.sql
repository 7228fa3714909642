drop trigger if exists stage1_jobs_notify_update on stage1_jobs;
drop trigger if exists stage1_jobs_notify_insert on stage1_jobs;
drop function if exists stage1_jobs_notify();
