drop table if exists stage1_api_tokens;
