update stage1_uploads set status = 'CREATED' where status = 'REJECTED';
alter table stage1_uploads drop constraint if exists stage1_uploads_status_check;
alter table stage1_uploads add constraint stage1_uploads_status_check check (status in ('CREATED', 'UPLOADED'));
