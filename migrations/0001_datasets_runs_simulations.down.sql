drop view if exists dataset_catalog;
drop table if exists simulation_trades;
drop table if exists simulation_trade_buckets;
drop table if exists simulation_runs;
drop table if exists walkforward_folds;
drop table if exists walkforward_runs;
drop table if exists stage1_datasets;
