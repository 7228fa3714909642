-- Metadata of datasets, walk-forward runs and simulations. Time series live in QuestDB;
-- simulation trades live here (a few thousand rows per simulation), so a simulation is written
-- in one Postgres transaction and can never be half-visible.

create table stage1_datasets (
    dataset_id            uuid primary key default gen_random_uuid(),
    dataset_slug          text not null unique check (dataset_slug ~ '^[a-z0-9_]{1,63}$'),
    symbol                text not null default '',
    granularity           text not null default '',
    ohlcv_measurement     text not null check (ohlcv_measurement ~ '^[a-z0-9_]{1,63}$'),
    indicator_measurement text not null check (indicator_measurement ~ '^[a-z0-9_]{1,63}$'),
    ohlcv_rows            bigint not null default 0,
    indicator_rows        bigint not null default 0,
    ohlcv_first_ts        bigint,
    ohlcv_last_ts         bigint,
    indicator_first_ts    bigint,
    indicator_last_ts     bigint,
    metadata              jsonb not null default '{}'::jsonb,
    source                text not null default '',
    created_at            timestamptz not null default now(),
    updated_at            timestamptz not null default now()
);
create index stage1_datasets_symbol_granularity on stage1_datasets (symbol, granularity);
create index stage1_datasets_created_at on stage1_datasets (created_at desc);

create table walkforward_runs (
    run_id                 uuid primary key default gen_random_uuid(),
    dataset_id             uuid not null references stage1_datasets (dataset_id) on delete restrict,
    prediction_measurement text not null unique check (prediction_measurement ~ '^[a-z0-9_]{1,63}$'),
    -- PENDING while predictions are being written; only COMPLETED runs are whole.
    status                 text not null default 'PENDING'
                           check (status in ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED')),
    error                  text,
    target_column          text not null default '',
    feature_columns        jsonb not null default '[]'::jsonb,
    threshold_columns      jsonb not null default '[]'::jsonb,
    walk_config            jsonb not null default '{}'::jsonb,
    hyperparameters        jsonb not null default '{}'::jsonb,
    summary_metrics        jsonb not null default '{}'::jsonb,
    prediction_rows        bigint not null default 0,
    started_at             timestamptz,
    completed_at           timestamptz,
    created_at             timestamptz not null default now(),
    updated_at             timestamptz not null default now()
);
create index walkforward_runs_dataset on walkforward_runs (dataset_id, created_at desc);
create index walkforward_runs_status on walkforward_runs (status);

create table walkforward_folds (
    run_id        uuid not null references walkforward_runs (run_id) on delete cascade,
    fold_number   integer not null check (fold_number >= 0),
    train_start   bigint,
    train_end     bigint,
    test_start    bigint,
    test_end      bigint,
    samples_train bigint,
    samples_test  bigint,
    thresholds    jsonb not null default '{}'::jsonb,
    metrics       jsonb not null default '{}'::jsonb,
    primary key (run_id, fold_number)
);

create table simulation_runs (
    simulation_id   uuid primary key default gen_random_uuid(),
    run_id          uuid references walkforward_runs (run_id) on delete cascade,
    dataset_id      uuid not null references stage1_datasets (dataset_id) on delete cascade,
    name            text not null default '',
    status          text not null default 'COMPLETED'
                    check (status in ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED')),
    error           text,
    config          jsonb not null default '{}'::jsonb,
    summary_metrics jsonb not null default '{}'::jsonb,
    trade_count     integer not null default 0,
    started_at      timestamptz,
    completed_at    timestamptz,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now()
);
create index simulation_runs_run on simulation_runs (run_id, created_at desc);
create index simulation_runs_dataset on simulation_runs (dataset_id, created_at desc);

-- Aggregates computed by the server from the trades (see docs/API.md, "Trade buckets").
create table simulation_trade_buckets (
    simulation_id   uuid not null references simulation_runs (simulation_id) on delete cascade,
    bucket_type     text not null,
    bucket_key      text not null,
    trade_count     integer not null,
    win_count       integer not null,
    win_rate        double precision not null,
    total_pnl       double precision not null,
    mean_pnl        double precision not null,
    mean_return_pct double precision,
    primary key (simulation_id, bucket_type, bucket_key)
);

create table simulation_trades (
    simulation_id uuid not null references simulation_runs (simulation_id) on delete cascade,
    trade_index   integer not null,
    bar_timestamp bigint not null,
    side          text not null,
    entry_price   double precision,
    exit_price    double precision,
    quantity      double precision,
    pnl           double precision,
    return_pct    double precision,
    extra         jsonb not null default '{}'::jsonb,
    primary key (simulation_id, trade_index)
);
create index simulation_trades_time on simulation_trades (simulation_id, bar_timestamp, trade_index);

create view dataset_catalog as
select d.*,
       (select count(*) from walkforward_runs r where r.dataset_id = d.dataset_id) as related_runs,
       (select count(*) from simulation_runs s where s.dataset_id = d.dataset_id) as related_simulations
from stage1_datasets d;
