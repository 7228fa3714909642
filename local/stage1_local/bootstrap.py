"""The local bootstrap token: `make up` / `make dev` run this after the migrations so a newcomer
can call the API at once (`make env` shows it as STAGE1_TOKEN).

It keeps the token in the stack's secrets file (`.state/secrets.env`, 0600) and reuses it while it
is still valid; when it is missing, unknown to the database, expired or revoked, it mints a new one
(scopes read, write, admin; no expiry) directly in Postgres. Prints the token on stdout.

Run: `python -m stage1_local.bootstrap [--secrets PATH]`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from stage1.auth.tokens import authenticate, issue
from stage1.core import db
from stage1.core.errors import Unauthorized
from stage1.core.settings import get_settings
from stage1_wire.dotenv import read_dotenv

KEY = "STAGE1_TOKEN"
NAME = "local bootstrap (make up)"


def default_secrets_file() -> Path:
    state = os.environ.get("STAGE1_STATE_DIR") or str(Path(__file__).resolve().parents[2] / ".state")
    return Path(state) / "secrets.env"


def read_value(path: Path, key: str) -> str | None:
    return read_dotenv(path).get(key) or None  # the one .env reader (stage1_wire.dotenv)


def write_value(path: Path, key: str, value: str) -> None:
    """Replace or append `key=value`, keeping every other line; the file stays 0600."""
    lines = path.read_text().splitlines() if path.is_file() else []
    lines = [line for line in lines if line.partition("=")[0].strip() != key] + [f"{key}={value}"]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    tmp.replace(path)


def ensure_token(path: Path) -> tuple[str, bool]:
    """The bootstrap token and whether it was minted now."""
    current = read_value(path, KEY)
    if current:
        try:
            identity = authenticate(current)
            if set(identity.scopes) == {"read", "write", "admin"}:
                return current, False
        except Unauthorized:
            pass
    token = issue(NAME, ["read", "write", "admin"]).token
    write_value(path, KEY, token)
    return token, True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secrets", type=Path, default=default_secrets_file())
    args = parser.parse_args(argv)
    get_settings()
    try:
        token, minted = ensure_token(args.secrets)
    finally:
        db.close_pool()
    print(f"{'minted' if minted else 'kept'} {token}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
