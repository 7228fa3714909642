alter table simulation_runs drop column if exists dataset_version;
alter table walkforward_runs drop column if exists dataset_version;
drop table if exists stage1_dataset_versions;
alter table stage1_datasets drop column if exists version;
