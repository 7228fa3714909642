-- REJECTED: the object did not match its declaration (its real size, or a part's length); it was
-- deleted (a multipart upload aborted) and the upload's import job FAILED. See docs/imports.md.
alter table stage1_uploads drop constraint if exists stage1_uploads_status_check;
alter table stage1_uploads add constraint stage1_uploads_status_check
    check (status in ('CREATED', 'UPLOADED', 'REJECTED'));
