drop table if exists stage1_upload_chunks;
drop index if exists stage1_uploads_chunked_open;
alter table stage1_uploads drop column if exists expires_at;
alter table stage1_uploads drop column if exists chunks;
