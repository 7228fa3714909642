drop index if exists simulation_runs_loading;
alter table simulation_runs drop column if exists load_until;
alter table simulation_runs drop column if exists job_id;
alter table simulation_runs drop column if exists trades_upload_id;
drop index if exists walkforward_runs_incremental_running;
alter table walkforward_folds drop column if exists prediction_digest;
alter table walkforward_folds drop column if exists prediction_rows;
alter table walkforward_runs drop column if exists incremental;
alter table walkforward_runs drop column if exists last_fold_at;
