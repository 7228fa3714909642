"""What needs the project's venv: migrations, the bootstrap token and the local gateway."""
from __future__ import annotations

from . import config as c
from .config import StackError
from .procs import ensure_service, http_ok, run, spawn
from .secrets_env import tool_env, write_env_file


def venv_python() -> str:
    if not c.VENV_PY.exists():
        raise StackError("gateway", f"{c.VENV_PY} is missing: run `make venv` (make up does)")
    return str(c.VENV_PY)


def migrate() -> None:
    """Apply pending migrations before the functions serve (idempotent)."""
    done = run([venv_python(), "-m", "stage1_local.migrate", "up"], cwd=c.REPO, env=tool_env())
    if done.returncode != 0:
        raise StackError("migrations", (done.stdout + done.stderr).strip()[-800:])
    c.say(f"{'schema':9} {done.stdout.strip().splitlines()[-1]}")


def bootstrap_token() -> None:
    """Keep (or mint) the local bootstrap token in secrets.env and print it (stage1_local.bootstrap)."""
    done = run([venv_python(), "-m", "stage1_local.bootstrap", "--secrets", str(c.SECRETS_FILE)], cwd=c.REPO,
               env=tool_env())
    if done.returncode != 0:
        raise StackError("token", (done.stdout + done.stderr).strip()[-800:])
    how, _, token = done.stdout.strip().splitlines()[-1].partition(" ")
    write_env_file()
    c.say(f"{'token':9} {how}: STAGE1_TOKEN={token} (read, write, admin; `make env` shows it)")
    c.say(f"{'':9} curl -H 'X-Stage1-Token: {token}' http://{c.HOST}:{c.GATEWAY_PORT}/api/datasets")


def up_gateway() -> None:
    def start() -> int:
        cmd = [venv_python(), "-m", "stage1_local.gateway", "--port", str(c.GATEWAY_PORT)]
        return spawn("gateway", cmd, env=tool_env(), cwd=str(c.REPO))

    ensure_service("gateway", start, lambda: http_ok(f"http://{c.HOST}:{c.GATEWAY_PORT}/api/health"))
