#!/usr/bin/env python3
"""Docker-free manager for the local stack: Postgres, QuestDB, MinIO and the local gateway.

Standard library only: it runs before any virtualenv exists (the gateway and the migrations
then run from the project's .venv, which `make venv` creates).
Usage: python3 local/stack.py {up [--no-gateway]|down|status|logs [service]|reset|env|restart-gateway|stop-gateway}
See docs/DEVELOPING.md for ports and settings.

The code lives in the package next to this file, by concern (local/stage1_stack/: config, procs,
secrets_env, postgres, questdb, sigv4, minio, gateway, cli). This entry point keeps every name of
the former single file: `stack.relocate(...)`, `stack.LOGS`, `stack.up_questdb()`, `stack.say = f`.
Each separately loaded copy of this file (tests/integration/private_stack.py loads one per private
stack) gets its own copy of the package, so relocating one leaves every other alone.
"""
from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent / "stage1_stack"


def _package() -> types.ModuleType:
    if __name__ == "__main__":  # `python3 local/stack.py`: local/ is on sys.path
        import stage1_stack

        return stage1_stack
    # Loaded as a file under its own name (importlib): a private copy of the package under a name of
    # its own, its submodules included (their relative imports resolve inside that copy).
    name = f"{__name__}__stage1_stack"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, PACKAGE_DIR / "__init__.py",
                                                  submodule_search_locations=[str(PACKAGE_DIR)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_stack = _package()


class _Entry(types.ModuleType):
    """Reads and writes of old top-level names go to the package (live, not copied at import)."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _stack.lookup(name)

    def __setattr__(self, name: str, value) -> None:
        if name.startswith("_"):
            super().__setattr__(name, value)
        else:
            _stack.assign(name, value)


def main(argv: list[str]) -> int:
    return _stack.cli.main(argv)


# Whoever loads this file registers it in sys.modules before running it (Python does; importlib's
# recipe does too, as tests/integration/private_stack.load_stack_module follows it).
sys.modules[__name__].__class__ = _Entry

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
