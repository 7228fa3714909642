-- Issue 13: incremental runs (folds sent one request at a time) and simulations whose trades come
-- from an upload (POST /api/simulations with trades_upload_id).

-- An incremental run (created RUNNING, no job): when its last fold arrived; the sweeper fails a run
-- idle longer than STAGE1_RUN_INCREMENTAL_TIMEOUT_SECONDS. Each fold records what its request sent
-- (row count and a digest of its predictions) so a re-sent fold is recognised (same: 200, different: 409).
alter table walkforward_runs add column last_fold_at timestamptz;
alter table walkforward_runs add column incremental boolean not null default false;
alter table walkforward_folds add column prediction_rows bigint;
alter table walkforward_folds add column prediction_digest text;
create index walkforward_runs_incremental_running on walkforward_runs (coalesce(last_fold_at, created_at))
    where status = 'RUNNING' and incremental;

-- A simulation from a trades upload: RUNNING (linked to the upload's import job) until its trades are
-- copied into simulation_trades and its buckets computed; `load_until` is the lease of the one loader.
alter table simulation_runs add column trades_upload_id uuid references stage1_uploads (upload_id) on delete set null;
alter table simulation_runs add column job_id uuid;
alter table simulation_runs add column load_until timestamptz;
create index simulation_runs_loading on simulation_runs (job_id) where status in ('PENDING', 'RUNNING');
