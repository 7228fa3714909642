-- Search and rank of runs and simulations (GET /api/runs and /api/simulations with filter=, sort=,
-- cursor=; docs/resources.md, "Search and rank").
--
-- Equality on a JSON key (`summary_metrics.model = 'xgb'`, `hyperparameters.max_depth = 6`, `in (...)`)
-- is compiled to containment (`summary_metrics @> '{"max_depth": 6}'`), which a GIN jsonb_path_ops
-- index answers for any key: smaller and faster than the default jsonb_ops, and containment is the
-- only operator we ask of it.
create index if not exists walkforward_runs_summary_metrics_gin
    on walkforward_runs using gin (summary_metrics jsonb_path_ops);
create index if not exists walkforward_runs_hyperparameters_gin
    on walkforward_runs using gin (hyperparameters jsonb_path_ops);
create index if not exists simulation_runs_summary_metrics_gin
    on simulation_runs using gin (summary_metrics jsonb_path_ops);
create index if not exists simulation_runs_config_gin
    on simulation_runs using gin (config jsonb_path_ops);

-- The default order (-created_at) across all datasets, and its keyset cursor (created_at, id):
-- a backward index scan stops after one page instead of sorting every row.
create index if not exists walkforward_runs_created_id on walkforward_runs (created_at, run_id);
create index if not exists simulation_runs_created_id on simulation_runs (created_at, simulation_id);

-- Ranges and sorts on a JSON key (`summary_metrics.sharpe > 1.2`, `sort=-summary_metrics.sharpe`)
-- would need one expression index per key (the keys are the users', so none is created here);
-- docs/resources.md shows the exact expression to index for a hot key.
