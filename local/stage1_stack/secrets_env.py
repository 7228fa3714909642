"""The stack's two files: `secrets.env` (generated once, 0600) and `stage1.env` (the settings every
local tool reads through STAGE1_ENV_FILE).

This package cannot import the one `.env` parser (`stage1_wire.dotenv`): it runs before the venv
exists and imports nothing outside the standard library. So it only writes plain `KEY=VALUE` lines
(`write_kv` refuses a value the shared parser would read back differently) and reads its own files
with `read_kv`, the same rules on that format; tests/unit/test_dotenv.py checks the round trip
through both readers.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from . import config as c

SECRET_KEYS = ("STAGE1_PG_PASSWORD", "STAGE1_S3_ACCESS_KEY", "STAGE1_S3_SECRET_KEY", "STAGE1_ADMIN_SECRET",
               "STAGE1_QDB_RO_PASSWORD")
WEBHOOK_TOKEN_KEY = "STAGE1_WEBHOOK_TOKEN"  # noqa: S105 - the name of the key, not a secret


def read_kv(path: Path) -> dict[str, str]:
    """`KEY=VALUE` lines as `write_kv` writes them (other lines skipped); a missing file is empty."""
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, sep, val = line.partition("=")
            if sep and key.strip() and not key.lstrip().startswith("#"):
                values[key.strip()] = val.strip()
    return values


def _line(key: str, value: str) -> str:
    value = str(value)
    if "\n" in value or "\r" in value or value != value.strip() or value[:1] in ("'", '"') or value[-1:] in ("'", '"') \
            or not key.isidentifier():
        raise ValueError(f"{key}: value would not read back the same from a .env file")
    return f"{key}={value}\n"


def write_kv(path: Path, values: dict[str, str]) -> None:
    """Write the file 0600 from the start (it holds secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(_line(k, v) for k, v in values.items())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def load_secrets() -> dict[str, str]:
    """Read secrets.env, generating missing values once (0600, never rewritten needlessly)."""
    values = read_kv(c.SECRETS_FILE)
    if all(values.get(k) for k in SECRET_KEYS):
        return values
    # MinIO keys: hex keeps them alphanumeric (MinIO wants >= 3 / >= 8 chars).
    fresh = {"STAGE1_PG_PASSWORD": secrets.token_urlsafe(24), "STAGE1_S3_ACCESS_KEY": secrets.token_hex(10),
             "STAGE1_S3_SECRET_KEY": secrets.token_hex(20), "STAGE1_ADMIN_SECRET": secrets.token_urlsafe(32),
             "STAGE1_QDB_RO_PASSWORD": secrets.token_hex(20)}
    values = {k: values.get(k) or fresh[k] for k in SECRET_KEYS}
    c.STATE.mkdir(parents=True, exist_ok=True)
    write_kv(c.SECRETS_FILE, values)
    return values


def webhook_token() -> str:
    """The bearer token MinIO sends with its webhook and the gateway checks (docs/imports.md).
    Appended to secrets.env once (kept out of SECRET_KEYS so other keys there are never rewritten)."""
    values = load_secrets()
    if values.get(WEBHOOK_TOKEN_KEY):
        return values[WEBHOOK_TOKEN_KEY]
    token = secrets.token_hex(24)
    with open(c.SECRETS_FILE, "a") as f:
        f.write(_line(WEBHOOK_TOKEN_KEY, token))
    return token


def env_vars() -> dict[str, str]:
    s = load_secrets()
    h = c.HOST
    return {
        "STAGE1_PG_DSN": f"postgresql://stage1:{s['STAGE1_PG_PASSWORD']}@{h}:{c.PG_PORT}/stage1",
        "STAGE1_QDB_HTTP_URL": f"http://{h}:{c.QDB_HTTP}", "STAGE1_QDB_USER": "", "STAGE1_QDB_PASSWORD": "",
        # QuestDB's read-only PGWire user: the user SQL of POST /api/questdb/query runs as it.
        "STAGE1_QDB_PG_READONLY_DSN": f"postgresql://{c.QDB_RO_USER}:{s['STAGE1_QDB_RO_PASSWORD']}@{h}:{c.QDB_PG}/qdb",
        "STAGE1_EXPORT_CAN_STREAM": "true",  # the local gateway streams responses (docs/questdb.md)
        "STAGE1_S3_ENDPOINT": f"http://{h}:{c.MINIO_PORT}",
        "STAGE1_S3_ACCESS_KEY": s["STAGE1_S3_ACCESS_KEY"], "STAGE1_S3_SECRET_KEY": s["STAGE1_S3_SECRET_KEY"],
        "STAGE1_S3_REGION": c.REGION, "STAGE1_BUCKET": c.BUCKET, "STAGE1_ADMIN_SECRET": s["STAGE1_ADMIN_SECRET"],
        # `STAGE1_AUTH_ENABLED=false make up` turns token checks off for local experiments (docs/auth.md).
        "STAGE1_AUTH_ENABLED": os.environ.get("STAGE1_AUTH_ENABLED", "true"),
        # The bootstrap token (read, write, admin) minted after the migrations: `make env` shows it.
        "STAGE1_TOKEN": s.get("STAGE1_TOKEN", ""),
        # Browser origins allowed by the gateway's CORS and by MinIO (the template's CorsAllowOrigins).
        "STAGE1_CORS_ALLOW_ORIGINS": os.environ.get("STAGE1_CORS_ALLOW_ORIGINS", "https://agenticresearch.info"),
        "STAGE1_GATEWAY_URL": f"http://{h}:{c.GATEWAY_PORT}",
        # invoke_async from processes outside a gateway (tests, scripts) goes to the gateway on 3000.
        "STAGE1_LOCAL_INVOKE_URL": f"http://{h}:{c.GATEWAY_PORT}",
        # The local worker token: MinIO's webhook and dispatch send it to the gateway's /_local/ routes,
        # which refuse everything without one (a MinIO started before it existed gets it on its next start).
        "STAGE1_WEBHOOK_TOKEN": webhook_token(),
        "STAGE1_STATE_DIR": str(c.STATE), "STAGE1_CACHE_DIR": str(c.CACHE),
    }


def write_env_file() -> None:
    write_kv(c.ENV_FILE, env_vars())


def tool_env() -> dict[str, str]:
    if c.TOOL_ENV_OVERRIDES is None:
        return {**os.environ, "STAGE1_ENV_FILE": str(c.ENV_FILE)}
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("STAGE1_")}
    return {**inherited, **c.TOOL_ENV_OVERRIDES, "STAGE1_ENV_FILE": str(c.ENV_FILE)}
