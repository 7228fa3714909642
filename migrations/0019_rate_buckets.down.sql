drop table if exists stage1_rate_buckets;
