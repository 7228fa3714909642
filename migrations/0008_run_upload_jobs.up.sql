-- A run whose predictions come from an uploaded file (POST /api/runs with upload_id) stays RUNNING
-- until that upload's import job ends; reads of the run then settle it to COMPLETED (row counts
-- read from QuestDB) or FAILED (with the job's error). See docs/resources.md.
alter table walkforward_runs
    add column upload_id uuid,
    add column job_id uuid references stage1_jobs (job_id) on delete set null;
create index walkforward_runs_job on walkforward_runs (job_id) where job_id is not null;
