-- API tokens. Only a SHA-256 of the token is stored; the token itself is shown once at issue.
create table stage1_api_tokens (
    token_id     uuid primary key default gen_random_uuid(),
    name         text not null,
    token_hash   text not null unique,
    token_prefix text not null,
    scopes       text[] not null check (scopes <@ array['read', 'write', 'admin']::text[]),
    created_at   timestamptz not null default now(),
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz
);
create index stage1_api_tokens_active on stage1_api_tokens (created_at desc) where revoked_at is null;
