drop table if exists stage1_jobs;
