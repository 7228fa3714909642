-- Issue 15: chunked uploads. A large file goes up as several chunk objects (each a valid file on its
-- own, cut at row boundaries by the client), each imported into the job's staging table as soon as
-- it lands; one job tracks them all and commits once the last chunk is in (stage1.uploads.chunks,
-- stage1.imports.chunks; docs/imports.md "Chunked uploads").
-- `chunks` on the upload: how many (null: a single-object or multipart upload, as before);
-- `expires_at`: a chunked upload not complete by then is expired by the sweeper (objects deleted,
-- staging dropped, job FAILED).
alter table stage1_uploads add column chunks integer check (chunks is null or chunks > 0);
alter table stage1_uploads add column expires_at timestamptz;

create table stage1_upload_chunks (
    upload_id        uuid not null references stage1_uploads (upload_id) on delete cascade,
    index            integer not null check (index >= 1),
    size             bigint not null check (size > 0),
    -- PENDING: not imported (its object may be in the bucket: arrived_at); IMPORTING: an invocation
    -- holds its lease; IMPORTED: its rows are in the staging table; FAILED: the file was bad.
    state            text not null default 'PENDING'
                     check (state in ('PENDING', 'IMPORTING', 'IMPORTED', 'FAILED')),
    rows             bigint not null default 0,
    first_ts         bigint,
    last_ts          bigint,
    columns          jsonb,
    format           text,
    arrived_at       timestamptz,
    lease_owner      text,
    lease_expires_at timestamptz,
    attempts         integer not null default 0,
    error            text,
    updated_at       timestamptz not null default now(),
    primary key (upload_id, index)
);
-- The sweeper's passes: chunks whose import lease expired, chunks that arrived but wait.
create index stage1_upload_chunks_open on stage1_upload_chunks (updated_at) where state in ('PENDING', 'IMPORTING');
create index stage1_uploads_chunked_open on stage1_uploads (expires_at) where chunks is not null;
