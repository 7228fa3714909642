drop table if exists stage1_questdb_tables;
