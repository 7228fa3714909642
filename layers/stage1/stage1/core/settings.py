"""Settings, read once from the environment (and an optional `.env` file in the working directory).

Every other module calls `get_settings()`; nothing reads `os.environ` directly, so a function's
configuration is visible in one place and a cold start parses it exactly once.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import msgspec


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    pg_dsn: str = "postgresql://stage1@127.0.0.1:55432/stage1"
    pg_pool_max: int = 4
    qdb_http_url: str = "http://127.0.0.1:9000"
    qdb_user: str = ""
    qdb_password: str = ""
    qdb_timeout: float = 60.0
    s3_endpoint: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_region: str = "us-east-1"
    bucket: str = "stage1-uploads"
    admin_secret: str = ""
    auth_enabled: bool = True
    # Auth, CORS and rate limits (stage1.auth; see docs/auth.md).
    # Comma-separated browser origins; the same rule as the template's CorsAllowOrigins parameter.
    cors_allow_origins: str = "https://agenticresearch.info"
    # The local gateway's per-token limiter (a token bucket): sustained requests/s and burst size.
    rate_limit_rps: float = 200.0
    rate_limit_burst: int = 1000
    # POST /api/auth/token, per source address and minute (stage1.auth.admin): wrong admin secrets (or bad
    # tokens) before it answers 429, and, counted apart, tokens issued with the right secret.
    admin_secret_attempts_per_minute: int = 10
    admin_secret_issues_per_minute: int = 60
    # last_used_at is written at most this often per token (a read-mostly lookup on every request).
    token_touch_seconds: int = 60
    gateway_url: str = "http://127.0.0.1:3000"
    log_level: str = "INFO"
    # Largest request body the API functions accept (API Gateway caps payloads at 10 MB).
    max_body_bytes: int = 10 * 1024 * 1024
    # Jobs and imports (stage1.jobs, stage1.uploads, stage1.imports; see docs/imports.md).
    # Where `invoke_async` posts locally (the gateway's /_local/invoke/<Function>); empty on AWS.
    local_invoke_url: str = ""
    fn_importerfunction: str = ""  # STAGE1_FN_<LOGICALNAME>: deployed function names (jobs.dispatch)
    fn_exporterfunction: str = ""
    job_lease_seconds: int = 60
    sweep_interval_seconds: float = 5.0
    # Uploads: the largest declared size, the most parts one multipart upload is cut into (the part
    # size follows: at least 16 MiB), and the presigned URLs' lifetime (held within 60 s .. 7 days).
    upload_max_bytes: int = 20 * 1024**3
    upload_max_parts: int = 1000
    multipart_threshold_bytes: int = 64 * 1024**2
    upload_url_expires_seconds: int = 3600
    # Largest body of the blocking POST /api/questdb/import (larger: 413; use an upload or /async).
    inline_import_max_bytes: int = 4 * 1024**2
    # Import tuning (see docs/imports.md, benchmark): CSV block parsed at a time, rows per ILP/HTTP
    # request (one QuestDB transaction), parallel ILP senders.
    import_block_bytes: int = 512 * 1024
    import_batch_rows: int = 60_000
    import_senders: int = 2
    # Import limits (stage1.imports.limits; docs/imports.md): memory is bounded by bytes, never by rows
    # alone; a file over a limit fails its job with a message naming the setting.
    import_max_columns: int = 1_000
    import_max_batch_bytes: int = 64 * 1024**2
    import_max_row_group_bytes: int = 1024**3
    import_max_string_bytes: int = 1024**2
    import_max_metadata_bytes: int = 16 * 1024**2
    # Decoded bytes per stored byte of a file (gzip, Parquet dictionaries/compression, Arrow compression).
    import_max_expansion_ratio: int = 100
    # Rows are joined into one ILP/HTTP request until import_batch_rows or this many bytes.
    import_frame_bytes: int = 16 * 1024**2
    # A backing service down mid-import: the job is retried with exponential backoff (up to
    # import_retry_max_seconds apart) until this long after the outage began, then FAILED.
    import_outage_deadline_seconds: int = 600
    import_retry_max_seconds: int = 60
    # Bearer token of the local gateway's worker routes: MinIO's webhook (MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_*)
    # and /_local/invoke (dispatch sends it). Empty: those routes refuse every request.
    webhook_token: str = ""
    # Datasets and runs (see docs/resources.md). An API request does all its QuestDB work (e.g. POST
    # /api/runs: create, write, wait until applied, count; deletes: the DROPs) within this many seconds
    # of its start; each call's timeout is cut from what is left. Below the Lambda's 29 s, so the final
    # Postgres update still fits.
    questdb_request_budget_seconds: float = 20.0
    # A run still PENDING this long after that budget (its function was killed) is failed by the sweeper.
    run_abandon_grace_seconds: float = 60.0
    # QuestDB inspection, read-only SQL and exports (stage1.sql, stage1.exports; see docs/questdb.md).
    # PGWire DSN of QuestDB's read-only user: POST /api/questdb/query runs user SQL as it.
    qdb_pg_readonly_dsn: str = ""
    query_default_rows: int = 1000
    query_max_rows: int = 10_000
    # Bounds of read-only SQL (docs/questdb.md). Memory by bytes: the JSON rows of one answer, and one row.
    query_max_bytes: int = 5 * 1024**2
    query_max_row_bytes: int = 1024**2
    # QuestDB's JSON answer for one page of a resource read (ohlcv, indicators, predictions): a page
    # that would pass it is read again with fewer rows (the client pages on with next_offset).
    page_max_bytes: int = 4 * 1024**2
    # Seconds: inline (synchronous) query/export requests must end before the API Lambda's 29 s, so
    # default and maximum leave headroom (a larger `timeout` is a 400 naming the maximum). Export
    # jobs run in the ExporterFunction (900 s): their own default and maximum, below that deadline.
    query_timeout: float = 20.0
    query_max_timeout: float = 25.0
    export_timeout: float = 20.0
    export_max_timeout: float = 25.0
    export_job_timeout: float = 300.0
    export_job_max_timeout: float = 840.0
    # A read whose result is larger goes to an export job (Lambda answers are capped at 6 MB).
    export_inline_max_bytes: int = 5 * 1024**2
    # True where responses really stream (local gateway, containers): mode=inline may then exceed the cap.
    export_can_stream: bool = False
    export_part_bytes: int = 16 * 1024**2
    export_url_expires_seconds: int = 3600

    def redacted(self) -> dict[str, object]:
        """The settings with secrets blanked, for logs and diagnostics."""
        secret = {"s3_secret_key", "admin_secret", "qdb_password", "webhook_token", "qdb_pg_readonly_dsn"}
        out = msgspec.structs.asdict(self)
        for key in secret:
            if out[key]:
                out[key] = "***"
        return out


_PREFIX = "STAGE1_"


def _read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and `#` comments skipped. The environment wins over the file."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return values


def load_settings(environ: dict[str, str] | None = None, dotenv: Path | None = None) -> Settings:
    env = dict(os.environ if environ is None else environ)
    # STAGE1_ENV_FILE names the file the local stack writes (`make env`); `.env` is the fallback.
    source = _read_dotenv(dotenv if dotenv is not None else Path(env.get("STAGE1_ENV_FILE", ".env")))
    source.update(env)
    raw = {
        name: source[_PREFIX + name.upper()]
        for name in Settings.__struct_fields__
        if _PREFIX + name.upper() in source
    }
    # strict=False lets msgspec turn "true"/"4" from the environment into bool/int.
    return msgspec.convert(raw, Settings, strict=False)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
