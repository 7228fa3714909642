"""Where the client connects and with which token: the environment, else the local stack's settings file."""

from __future__ import annotations

import os
from pathlib import Path

from stage1_wire.dotenv import read_dotenv

DEFAULT_URL = "http://127.0.0.1:3000"


# The local stack's settings file, relative to a checkout of the repository.
LOCAL_ENV_FILE = Path(".state") / "stage1.env"


def config_from_env(environ: dict[str, str] | None = None,
                    default_file: Path | None = LOCAL_ENV_FILE) -> tuple[str, str]:
    """(url, token) from `STAGE1_URL` (or `STAGE1_GATEWAY_URL`) and `STAGE1_TOKEN`; what the
    environment lacks is read from the file `STAGE1_ENV_FILE` names, else from `.state/stage1.env`
    in the working directory (the local stack's settings: run from the repository, `stage1` finds
    the local gateway and its bootstrap token by itself)."""
    env = dict(os.environ if environ is None else environ)
    file = env.get("STAGE1_ENV_FILE") or (str(default_file) if default_file and default_file.is_file() else "")
    if file and not (env.get("STAGE1_TOKEN") and (env.get("STAGE1_URL") or env.get("STAGE1_GATEWAY_URL"))):
        env = {**read_dotenv(file), **{k: v for k, v in env.items() if v}}
    url = env.get("STAGE1_URL") or env.get("STAGE1_GATEWAY_URL") or DEFAULT_URL
    return url.rstrip("/"), env.get("STAGE1_TOKEN", "")


