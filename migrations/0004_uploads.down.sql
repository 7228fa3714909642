drop table if exists stage1_uploads;
