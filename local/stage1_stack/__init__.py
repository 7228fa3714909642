"""The local stack manager, by concern (standard library only; runs before any venv exists).

    config       where it lives and what it listens on (the one mutable place; `relocate`)
    procs        detached processes, pid files, health checks, idempotent start, stop
    secrets_env  secrets.env and stage1.env (written as plain KEY=VALUE), the tools' environment
    postgres     Debian Postgres as an unprivileged user
    questdb      the pinned jar (SHA-1 checked), Java, loopback config
    sigv4        a minimal AWS SigV4 signer (S3 calls to MinIO without an SDK)
    minio        MinIO built from source, its bucket and webhook
    gateway      migrations, bootstrap token, local gateway (these need the project's venv)
    cli          the commands

`local/stack.py` is the entry point (`python3 local/stack.py up`) and keeps every old name of the
single-file version (`stack.relocate`, `stack.LOGS`, `stack.say = ...`): see `lookup`/`assign`.
"""
from __future__ import annotations

from types import ModuleType

from . import cli, config, gateway, minio, postgres, procs, questdb, secrets_env, sigv4

MODULES: tuple[ModuleType, ...] = (config, procs, secrets_env, postgres, questdb, sigv4, minio, gateway, cli)


def lookup(name: str):
    """An old top-level name of local/stack.py, read live (after `relocate`, `LOGS` is the new one)."""
    for module in MODULES:
        if name in vars(module):
            return vars(module)[name]
    raise AttributeError(name)


def assign(name: str, value) -> None:
    """`stack.NAME = value` as the single-file version allowed: configuration (and the `say` hook)
    lives in `config`, which every module reads at call time; anything else is set where it is defined."""
    for module in MODULES:
        if name in vars(module):
            setattr(module, name, value)
            return
    raise AttributeError(f"local/stack.py has no {name!r} to set")
