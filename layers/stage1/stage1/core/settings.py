"""Settings, read once from the environment (and an optional `.env` file), grouped by concern.

Every other module calls `get_settings()` and reads one group: `get_settings().postgres.pg_dsn`,
`get_settings().imports.import_max_columns`. Nothing reads `os.environ` directly, so a function's
configuration is visible in one place, parsed and validated exactly once at cold start.

Every field keeps its environment variable `STAGE1_<FIELD>` (template.yaml, local/stack.py and the
docs use those names). Types and ranges are checked by msgspec (`Meta`), URL and DSN shapes by
pattern; a bad value fails the cold start with a message naming the variable.

Deployed (on Lambda, i.e. `AWS_LAMBDA_FUNCTION_NAME` set, or `STAGE1_ENV=deployed`) the DSN, the
QuestDB URL and the bucket are REQUIRED: the local stack's localhost defaults (`LOCAL_DEFAULTS`)
apply only outside a deployment, so a function missing its DSN fails instead of quietly dialling
127.0.0.1. `docs/DEVELOPING.md`'s settings table is generated from this module
(`python -m stage1_local.settings_doc`).
"""

from __future__ import annotations

import os
import re
import typing
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from stage1_wire.dotenv import read_dotenv

# Shapes, checked only when a value is set ("" means "not configured" where that is allowed).
_HTTP = r"^(https?://[^\s/?#]+[^\s]*)?$"
_PG = r"^(postgres(ql)?://[^\s]+)?$"
_BUCKET = r"^([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])?$"


def _s(doc: str, **kw: Any) -> Any:
    return Meta(description=doc, **kw)


class Postgres(msgspec.Struct, frozen=True, kw_only=True):
    pg_dsn: Annotated[str, _s("Postgres DSN of the service's database (libpq URL).", pattern=_PG)] = ""
    pg_pool_max: Annotated[int, _s("Connections per process's pool.", ge=1)] = 4


class QuestDB(msgspec.Struct, frozen=True, kw_only=True):
    qdb_http_url: Annotated[str, _s("QuestDB's HTTP endpoint (/exec, /imp, ILP over HTTP).", pattern=_HTTP)] = ""
    qdb_user: Annotated[str, _s("QuestDB HTTP basic-auth user (empty: none).")] = ""
    qdb_password: Annotated[str, _s("QuestDB HTTP basic-auth password (secret).")] = ""
    qdb_timeout: Annotated[float, _s("Seconds of one QuestDB HTTP call.", gt=0)] = 60.0
    qdb_pg_readonly_dsn: Annotated[str, _s(
        "PGWire DSN of QuestDB's read-only user: POST /api/questdb/query runs user SQL as it (secret; "
        "empty: that endpoint answers 503).", pattern=_PG)] = ""
    questdb_request_budget_seconds: Annotated[float, _s(
        "An API request does all its QuestDB work within this many seconds of its start; each call's "
        "timeout is cut from what is left (below the Lambda's 29 s).", gt=0)] = 20.0


class ObjectStore(msgspec.Struct, frozen=True, kw_only=True):
    s3_endpoint: Annotated[str, _s("S3 endpoint URL (MinIO locally; empty: AWS).", pattern=_HTTP)] = ""
    s3_access_key: Annotated[str, _s("S3 access key (empty: the function's role).")] = ""
    s3_secret_key: Annotated[str, _s("S3 secret key (secret; empty: the function's role).")] = ""
    s3_region: Annotated[str, _s("S3 region.", min_length=1)] = "us-east-1"
    bucket: Annotated[str, _s("Bucket of uploads and exports.", pattern=_BUCKET)] = ""


class Auth(msgspec.Struct, frozen=True, kw_only=True):
    admin_secret: Annotated[str, _s("Secret that mints tokens at POST /api/auth/token (secret).")] = ""
    auth_enabled: Annotated[bool, _s("Check bearer tokens (false only for local experiments).")] = True
    cors_allow_origins: Annotated[str, _s(
        "Comma-separated browser origins (the template's CorsAllowOrigins).")] = "https://agenticresearch.info"
    rate_limit_rps: Annotated[float, _s("Local gateway's per-token limiter: sustained requests/s.", gt=0)] = 200.0
    rate_limit_burst: Annotated[int, _s("Local gateway's per-token limiter: burst size.", ge=1)] = 1000
    admin_secret_attempts_per_minute: Annotated[int, _s(
        "POST /api/auth/token: wrong secrets (or bad tokens) per source address and minute before 429.",
        ge=1)] = 10
    admin_secret_issues_per_minute: Annotated[int, _s(
        "POST /api/auth/token: tokens issued with the right secret per source address and minute.", ge=1)] = 60
    token_touch_seconds: Annotated[int, _s("A token's last_used_at is written at most this often.", ge=0)] = 60
    webhook_token: Annotated[str, _s(
        "Bearer token of the local gateway's worker routes (MinIO webhook, /_local/invoke); empty: they "
        "refuse every request (secret).")] = ""


class Service(msgspec.Struct, frozen=True, kw_only=True):
    gateway_url: Annotated[str, _s("Where local tools and tests reach the gateway (local only).",
                                   pattern=_HTTP)] = ""
    log_level: Annotated[str, _s("Log level.", pattern=r"^(?i:DEBUG|INFO|WARNING|ERROR|CRITICAL)$")] = "INFO"
    max_body_bytes: Annotated[int, _s("Largest request body of the API functions (API Gateway: 10 MB).",
                                      ge=1)] = 10 * 1024 * 1024


class Jobs(msgspec.Struct, frozen=True, kw_only=True):
    local_invoke_url: Annotated[str, _s(
        "Where invoke_async posts locally (the gateway's /_local/invoke/<Function>); empty on AWS.",
        pattern=_HTTP)] = ""
    fn_importerfunction: Annotated[str, _s("Deployed ImporterFunction name (template.yaml; jobs.dispatch).")] = ""
    fn_exporterfunction: Annotated[str, _s("Deployed ExporterFunction name (template.yaml; jobs.dispatch).")] = ""
    job_lease_seconds: Annotated[int, _s("A claimed job's lease; heartbeats renew it.", ge=1)] = 60
    sweep_interval_seconds: Annotated[float, _s("Seconds between sweeps (local sweeper loop).", gt=0)] = 5.0
    run_abandon_grace_seconds: Annotated[float, _s(
        "A run still PENDING this long after the QuestDB budget (its function was killed) is failed by "
        "the sweeper.", ge=0)] = 60.0
    run_incremental_timeout_seconds: Annotated[float, _s(
        "An incremental run (created RUNNING) that received no fold for this long is failed by the sweeper.",
        ge=1)] = 6 * 3600.0
    simulation_load_batch_rows: Annotated[int, _s(
        "Trades of a simulation's upload copied into Postgres per COPY transaction.", ge=100, le=1_000_000)] = 20_000
    importer_concurrency: Annotated[int, _s(
        "Importer invocations at once: the local gateway's background invocations; on AWS the template's "
        "ImporterConcurrency parameter (ReservedConcurrentExecutions) bounds them.", ge=1, le=1000)] = 2


class Uploads(msgspec.Struct, frozen=True, kw_only=True):
    upload_max_bytes: Annotated[int, _s("Largest declared upload size.", ge=1)] = 20 * 1024**3
    upload_max_parts: Annotated[int, _s("Most parts of one multipart upload (S3: 10000).", ge=1, le=10_000)] = 1000
    multipart_threshold_bytes: Annotated[int, _s("Uploads above this are multipart.", ge=5 * 1024**2)] = 64 * 1024**2
    upload_url_expires_seconds: Annotated[int, _s("Presigned upload URLs' lifetime (held within 60 s .. 7 days).",
                                                  ge=1)] = 3600
    upload_max_chunks: Annotated[int, _s("Most chunks of one chunked upload.", ge=1, le=10_000)] = 10_000
    upload_chunk_max_bytes: Annotated[int, _s(
        "Largest chunk of a chunked upload (one presigned PUT; S3: 5 GiB).", ge=1, le=5 * 1024**3)] = 1024**3
    upload_chunked_ttl_seconds: Annotated[int, _s(
        "A chunked upload not complete this long after it was created is expired by the sweeper "
        "(objects deleted, staging dropped, job FAILED).", ge=60)] = 24 * 3600
    upload_chunk_max_attempts: Annotated[int, _s(
        "Imports of one chunk (retries after an outage or a lost invocation) before its job FAILS.",
        ge=1, le=100)] = 5


class Imports(msgspec.Struct, frozen=True, kw_only=True):
    inline_import_max_bytes: Annotated[int, _s(
        "Largest body of the blocking POST /api/questdb/import (larger: 413).", ge=1)] = 4 * 1024**2
    import_block_bytes: Annotated[int, _s("CSV block parsed at a time.", ge=1024)] = 512 * 1024
    import_batch_rows: Annotated[int, _s("Rows per ILP/HTTP request (one QuestDB transaction).", ge=1)] = 60_000
    import_senders: Annotated[int, _s("Parallel ILP senders.", ge=1, le=64)] = 2
    import_max_columns: Annotated[int, _s("Most columns of an imported file.", ge=1)] = 1_000
    import_max_batch_bytes: Annotated[int, _s("Largest decoded record batch.", ge=1)] = 64 * 1024**2
    import_max_row_group_bytes: Annotated[int, _s("Largest Parquet row group (uncompressed).", ge=1)] = 1024**3
    import_max_string_bytes: Annotated[int, _s("Largest single string value.", ge=1)] = 1024**2
    import_max_metadata_bytes: Annotated[int, _s("Largest Parquet/Arrow footer metadata.", ge=1)] = 16 * 1024**2
    import_max_expansion_ratio: Annotated[int, _s(
        "Decoded bytes per stored byte of a file (gzip, dictionaries, compression).", ge=1)] = 100
    import_frame_bytes: Annotated[int, _s("Rows join one ILP/HTTP request until batch rows or this many bytes.",
                                          ge=1024)] = 16 * 1024**2
    import_outage_deadline_seconds: Annotated[int, _s(
        "A backing service down mid-import: the job is retried until this long after the outage began, "
        "then FAILED.", ge=0)] = 600
    import_retry_max_seconds: Annotated[int, _s("Longest backoff between those retries.", ge=1)] = 60


class Queries(msgspec.Struct, frozen=True, kw_only=True):
    query_default_rows: Annotated[int, _s("Rows of a read-only SQL answer when none asked.", ge=1)] = 1000
    query_max_rows: Annotated[int, _s("Most rows of a read-only SQL answer.", ge=1)] = 10_000
    query_max_bytes: Annotated[int, _s("Largest JSON rows of one SQL answer.", ge=1)] = 5 * 1024**2
    query_max_row_bytes: Annotated[int, _s("Largest single row of an SQL answer.", ge=1)] = 1024**2
    page_max_bytes: Annotated[int, _s(
        "QuestDB's JSON answer for one page of a resource read; larger pages are read again with fewer rows.",
        ge=1)] = 4 * 1024**2
    query_timeout: Annotated[float, _s("Default seconds of an inline query.", gt=0)] = 20.0
    query_max_timeout: Annotated[float, _s("Largest `timeout` of an inline query (larger: 400).", gt=0)] = 25.0


class Exports(msgspec.Struct, frozen=True, kw_only=True):
    export_timeout: Annotated[float, _s("Default seconds of an inline export.", gt=0)] = 20.0
    export_max_timeout: Annotated[float, _s("Largest `timeout` of an inline export.", gt=0)] = 25.0
    export_job_timeout: Annotated[float, _s("Default seconds of an export job.", gt=0)] = 300.0
    export_job_max_timeout: Annotated[float, _s("Largest `timeout` of an export job (ExporterFunction: 900 s).",
                                                gt=0)] = 840.0
    export_inline_max_bytes: Annotated[int, _s("A read larger than this goes to an export job (Lambda: 6 MB).",
                                               ge=1)] = 5 * 1024**2
    export_can_stream: Annotated[bool, _s("Responses really stream (local gateway): mode=inline may pass the cap.")
                                 ] = False
    export_part_bytes: Annotated[int, _s("Multipart part size of an export (S3: at least 5 MiB).",
                                         ge=5 * 1024**2)] = 16 * 1024**2
    export_url_expires_seconds: Annotated[int, _s("Presigned download URLs' lifetime.", ge=1)] = 3600


# Group attribute -> Struct, in the order the docs list them.
GROUPS: dict[str, type[msgspec.Struct]] = {
    "postgres": Postgres, "questdb": QuestDB, "store": ObjectStore, "auth": Auth, "service": Service,
    "jobs": Jobs, "uploads": Uploads, "imports": Imports, "queries": Queries, "exports": Exports,
}
# The local stack's defaults: used only when not deployed. Deployed, REQUIRED fields must be set.
LOCAL_DEFAULTS: dict[str, str] = {
    "pg_dsn": "postgresql://stage1@127.0.0.1:55432/stage1",
    "qdb_http_url": "http://127.0.0.1:9000",
    "bucket": "stage1-uploads",
    "gateway_url": "http://127.0.0.1:3000",
}
REQUIRED_DEPLOYED = ("pg_dsn", "qdb_http_url", "bucket")
SECRETS = frozenset({"s3_secret_key", "admin_secret", "qdb_password", "webhook_token", "qdb_pg_readonly_dsn"})
PREFIX = "STAGE1_"
# Field -> group attribute (every field name is unique across groups).
FIELD_GROUP: dict[str, str] = {f: g for g, cls in GROUPS.items() for f in cls.__struct_fields__}


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the environment variable(s)."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    postgres: Postgres = msgspec.field(default_factory=lambda: Postgres(pg_dsn=LOCAL_DEFAULTS["pg_dsn"]))
    questdb: QuestDB = msgspec.field(default_factory=lambda: QuestDB(qdb_http_url=LOCAL_DEFAULTS["qdb_http_url"]))
    store: ObjectStore = msgspec.field(default_factory=lambda: ObjectStore(bucket=LOCAL_DEFAULTS["bucket"]))
    auth: Auth = msgspec.field(default_factory=Auth)
    service: Service = msgspec.field(default_factory=lambda: Service(gateway_url=LOCAL_DEFAULTS["gateway_url"]))
    jobs: Jobs = msgspec.field(default_factory=Jobs)
    uploads: Uploads = msgspec.field(default_factory=Uploads)
    imports: Imports = msgspec.field(default_factory=Imports)
    queries: Queries = msgspec.field(default_factory=Queries)
    exports: Exports = msgspec.field(default_factory=Exports)

    @classmethod
    def of(cls, **flat: Any) -> Settings:
        """Local-stack settings with some fields set by their flat names (tests: `Settings.of(bucket="b")`)."""
        return _build({**LOCAL_DEFAULTS, **flat})

    def flat(self) -> dict[str, object]:
        return {f: v for g in GROUPS for f, v in msgspec.structs.asdict(getattr(self, g)).items()}

    def redacted(self) -> dict[str, object]:
        """The settings (flat, by field) with secrets blanked, for logs and diagnostics."""
        return {k: ("***" if k in SECRETS and v else v) for k, v in self.flat().items()}


def env_name(field: str) -> str:
    return PREFIX + field.upper()


def deployed(env: dict[str, str]) -> bool:
    return bool(env.get("AWS_LAMBDA_FUNCTION_NAME")) or env.get("STAGE1_ENV", "").lower() == "deployed"


def _build(raw: dict[str, Any]) -> Settings:
    groups: dict[str, msgspec.Struct] = {}
    errors: list[str] = []
    for group, cls in GROUPS.items():
        part = {f: raw[f] for f in cls.__struct_fields__ if f in raw}
        try:
            # strict=False lets msgspec turn "true"/"4" from the environment into bool/int.
            groups[group] = msgspec.convert(part, cls, strict=False)
        except msgspec.ValidationError as exc:
            text = str(exc)
            found = re.search(r"\$\.(\w+)", text)
            field = found.group(1) if found else ""
            name = env_name(field) if field in FIELD_GROUP else group
            errors.append(f"{name}: {text.partition(' - at ')[0]} (got {str(part.get(field, ''))[:80]!r})"
                          if field not in SECRETS else f"{name}: {text.partition(' - at ')[0]}")
    if errors:
        raise SettingsError("invalid settings: " + "; ".join(errors))
    return Settings(**groups)


def load_settings(environ: dict[str, str] | None = None, dotenv: Path | None = None) -> Settings:
    env = dict(os.environ if environ is None else environ)
    # STAGE1_ENV_FILE names the file the local stack writes (`make env`); `.env` is the fallback.
    source = read_dotenv(dotenv if dotenv is not None else Path(env.get("STAGE1_ENV_FILE", ".env")))
    source.update(env)
    raw: dict[str, Any] = {f: source[env_name(f)] for f in FIELD_GROUP if env_name(f) in source}
    if deployed(source):
        missing = [env_name(f) for f in REQUIRED_DEPLOYED if not str(raw.get(f, "")).strip()]
        if missing:
            raise SettingsError(f"deployed without {', '.join(missing)}: set them (template.yaml Globals); "
                                "localhost defaults apply only to the local stack")
    else:
        raw = {**LOCAL_DEFAULTS, **{k: v for k, v in raw.items() if not (k in LOCAL_DEFAULTS and v == "")}}
    return _build(raw)


def describe() -> list[dict[str, str]]:
    """One row per setting (variable, group, default, required where deployed, meaning) for the docs."""
    rows = []
    for group, cls in GROUPS.items():
        hints = typing.get_type_hints(cls, include_extras=True)
        for field, default in zip(cls.__struct_fields__, cls.__struct_defaults__, strict=True):
            meta = next((m for m in getattr(hints[field], "__metadata__", ()) if isinstance(m, Meta)), None)
            local = LOCAL_DEFAULTS.get(field, default)
            rows.append({"variable": env_name(field), "group": group, "field": field,
                         "default": "" if field in SECRETS else str(local).lower() if isinstance(local, bool)
                         else str(local),
                         "required": "yes" if field in REQUIRED_DEPLOYED else "",
                         "meaning": (meta.description if meta else "") or ""})
    return rows


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
