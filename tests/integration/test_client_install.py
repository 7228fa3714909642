"""The client installs and runs alone: `pip install layers/client` into a fresh venv brings httpx, msgspec
and rich, none of the server's stack, and its `stage1` command talks to the running gateway.

Fast on a warm pip cache (PIP_CACHE_DIR, else pip's default ~/.cache/pip, outside the repository): the
venv is made without pip (the project's pip installs into it with `--python`), and the client's source
is copied first so the build leaves nothing in the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from client_support import cli_env

from stage1_local.template import REPO

CLIENT = REPO / "layers" / "client"
SERVER_STACK = ("litestar", "psycopg", "boto3", "pyarrow", "questdb", "pandas", "stage1", "stage1_local")


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("client-venv")
    source = root / "src"
    shutil.copytree(CLIENT, source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    venv.create(root / "venv", with_pip=False)
    python = root / "venv" / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "STAGE1_"))}
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                           "--disable-pip-version-check", str(source)], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return root / "venv"


def test_only_the_client_and_its_three_dependencies_are_installed(client_venv):
    probe = ("import importlib.util, json; "
             f"print(json.dumps({{m: importlib.util.find_spec(m) is not None for m in {SERVER_STACK!r}}}))")
    out = subprocess.run([str(client_venv / "bin" / "python"), "-I", "-c", probe], capture_output=True, text=True,
                         check=True, cwd=client_venv)
    assert out.stdout.strip() == "{" + ", ".join(f'"{m}": false' for m in SERVER_STACK) + "}"
    # What it does have: the client, the wire schemas, and their three dependencies.
    subprocess.run([str(client_venv / "bin" / "python"), "-I", "-c",
                    "import httpx, msgspec, rich, stage1_client.api, stage1_client.cli, stage1_wire.runs"],
                   check=True, cwd=client_venv)
    for module in ("litestar", "psycopg", "boto3", "pyarrow", "questdb"):
        proc = subprocess.run([str(client_venv / "bin" / "python"), "-I", "-c", f"import {module}"],
                              capture_output=True, text=True, cwd=client_venv)
        assert proc.returncode == 1 and "ModuleNotFoundError" in proc.stderr, (module, proc.stderr[-500:])


def test_the_installed_command_lists_datasets_from_the_gateway(client_venv, gateway_url, api_token, tmp_path):
    stage1 = str(client_venv / "bin" / "stage1")
    env = cli_env(gateway_url, api_token)
    helped = subprocess.run([stage1, "--help"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert helped.returncode == 0, helped.stderr
    assert "datasets" in helped.stdout and "upload" in helped.stdout
    table = subprocess.run([stage1, "datasets", "list"], capture_output=True, text=True, env=env, cwd=tmp_path,
                           timeout=60)
    assert table.returncode == 0, table.stderr
    assert "Datasets" in table.stdout or "no datasets" in table.stdout.lower(), table.stdout[:500]
    listed = subprocess.run([stage1, "--json", "datasets", "list", "--limit", "1"], capture_output=True, text=True,
                            env=env, cwd=tmp_path, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert '"datasets"' in listed.stdout and '"total"' in listed.stdout
    # And with no token the error is the service's one-line 401, exit code 3 (auth; docs/client.md).
    anonymous = subprocess.run([stage1, "datasets", "list"], capture_output=True, text=True,
                               env={**env, "STAGE1_TOKEN": ""}, cwd=tmp_path, timeout=60)
    assert anonymous.returncode == 3 and anonymous.stderr.startswith("stage1: error: 401 "), anonymous.stderr
