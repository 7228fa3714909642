-- Which data a run saw (docs/resources.md, "Dataset versions and fingerprints"). A dataset's
-- `version` counts the changes of its content: an import (or POST /api/datasets with
-- record_questdb) whose fingerprint differs from the latest version's adds a row here and bumps
-- the counter in the same short transaction; one that changes nothing adds nothing.
-- 0: no version recorded yet (datasets older than this migration until their next import).
alter table stage1_datasets add column if not exists version integer not null default 0 check (version >= 0);

create table stage1_dataset_versions (
    dataset_id            uuid not null references stage1_datasets (dataset_id) on delete cascade,
    version               integer not null check (version >= 1),
    created_at            timestamptz not null default now(),
    -- what made it: an import of one table ('ohlcv' / 'indicators') or POST /api/datasets ('record')
    kind                  text not null check (kind in ('ohlcv', 'indicators', 'record')),
    upload_id             uuid,
    job_id                uuid,
    ohlcv_rows            bigint not null,
    ohlcv_first_ts        bigint,
    ohlcv_last_ts         bigint,
    ohlcv_fingerprint     text,
    indicator_rows        bigint not null,
    indicator_first_ts    bigint,
    indicator_last_ts     bigint,
    indicator_fingerprint text,
    fingerprint           text not null,  -- sha256 of both tables' fingerprints
    primary key (dataset_id, version)
);

-- The dataset's version when the run / simulation was stored (null: stored before this migration).
alter table walkforward_runs add column if not exists dataset_version jsonb;
alter table simulation_runs add column if not exists dataset_version jsonb;
