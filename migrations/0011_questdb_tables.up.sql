-- Who owns each QuestDB table the service writes or reads (issue 11, holes 2 and 3).
-- A run, simulation or import may write only into a table registered to it (or, for a dataset
-- import, to its dataset); deletes drop only tables whose row says `owned` (the service created
-- them for that record) and that no other record still names. Maintained by
-- stage1.timeseries.ownership; see docs/resources.md.
create table stage1_questdb_tables (
    table_name  text primary key check (table_name ~ '^[a-z0-9_]{1,63}$'),
    owner_kind  text not null check (owner_kind in ('dataset', 'run', 'simulation', 'upload', 'job')),
    owner_id    uuid not null,
    -- ohlcv | indicators | predictions | trades | raw | staging
    role        text not null check (role in ('ohlcv', 'indicators', 'predictions', 'trades', 'raw', 'staging')),
    -- true: the service created it for this record (dropped with it); false: it existed before and
    -- was registered (never dropped by the service).
    owned       boolean not null,
    created_at  timestamptz not null default now()
);
create index stage1_questdb_tables_owner on stage1_questdb_tables (owner_kind, owner_id);

-- Backfill: today's records name their tables; the service created them, so they are owned.
-- A name two records share (possible before this table existed) goes to the first claimant only.
insert into stage1_questdb_tables (table_name, owner_kind, owner_id, role, owned)
select ohlcv_measurement, 'dataset', dataset_id, 'ohlcv', true from stage1_datasets
order by created_at
on conflict (table_name) do nothing;
insert into stage1_questdb_tables (table_name, owner_kind, owner_id, role, owned)
select indicator_measurement, 'dataset', dataset_id, 'indicators', true from stage1_datasets
order by created_at
on conflict (table_name) do nothing;
insert into stage1_questdb_tables (table_name, owner_kind, owner_id, role, owned)
select prediction_measurement, 'run', run_id, 'predictions', true from walkforward_runs
order by created_at
on conflict (table_name) do nothing;
-- Uploads not yet taken by a run own the table their import fills (predictions, trades, raw);
-- ohlcv/indicator uploads fill their dataset's tables (registered above).
insert into stage1_questdb_tables (table_name, owner_kind, owner_id, role, owned)
select measurement, 'upload', upload_id, kind, true from stage1_uploads
where kind in ('predictions', 'trades', 'raw')
order by created_at
on conflict (table_name) do nothing;
