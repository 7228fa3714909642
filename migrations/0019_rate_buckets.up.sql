-- Token buckets shared by every process (stage1.auth.buckets): the limits on token issue by admin
-- secret (docs/auth.md), which lived in each process before, so N warm Lambda containers gave a
-- guesser N times the budget. One row per (bucket, key): its level at `stamp` (Postgres' clock, the
-- one clock every container shares). A missing row is a full bucket.
create table stage1_rate_buckets (
    bucket  text not null check (length(bucket) between 1 and 64),
    key     text not null check (length(key) <= 128),
    level   double precision not null check (level >= 0),
    stamp   timestamptz not null,
    -- Whether the latest hit took a token: RETURNING sees only the new row (before Postgres 18), and
    -- the level alone cannot tell "took the last one" from "had less than one".
    allowed boolean not null,
    -- From then on the bucket is full again if nobody hits it (stamp + burst/rate): the sweeper
    -- deletes it, which changes nothing a client can see.
    full_at timestamptz not null,
    primary key (bucket, key)
);
create index stage1_rate_buckets_full on stage1_rate_buckets (full_at);
