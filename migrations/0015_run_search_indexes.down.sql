drop index if exists walkforward_runs_summary_metrics_gin;
drop index if exists walkforward_runs_hyperparameters_gin;
drop index if exists simulation_runs_summary_metrics_gin;
drop index if exists simulation_runs_config_gin;
drop index if exists walkforward_runs_created_id;
drop index if exists simulation_runs_created_id;
