-- Background jobs (imports, exports). Workers claim with FOR UPDATE SKIP LOCKED and hold a lease;
-- the sweeper returns RUNNING jobs whose lease expired to PENDING, up to max_attempts.
create table stage1_jobs (
    job_id           uuid primary key default gen_random_uuid(),
    job_type         text not null,
    status           text not null default 'PENDING'
                     check (status in ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED')),
    -- One job per object (e.g. 's3://bucket/key#etag'): a duplicate event finds the job it started.
    idempotency_key  text unique,
    payload          jsonb not null default '{}'::jsonb,
    progress         bigint not null default 0,
    total            bigint,
    result           jsonb,
    error            text,
    attempts         integer not null default 0,
    max_attempts     integer not null default 3 check (max_attempts > 0),
    lease_owner      text,
    lease_expires_at timestamptz,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    started_at       timestamptz,
    completed_at     timestamptz
);
create index stage1_jobs_pending on stage1_jobs (created_at) where status = 'PENDING';
create index stage1_jobs_leases on stage1_jobs (lease_expires_at) where status = 'RUNNING';
create index stage1_jobs_listing on stage1_jobs (created_at desc, job_id);
create index stage1_jobs_type_status on stage1_jobs (job_type, status);
