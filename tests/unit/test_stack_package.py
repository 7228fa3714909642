"""local/stack.py split into local/stage1_stack/ (by concern), still standard library only; the entry
point keeps the old names; the `.env` files it writes read back the same through the one parser."""

import ast
import importlib.util
import os
import sys
import uuid
from pathlib import Path

import pytest

from stage1_wire.dotenv import parse_dotenv, read_dotenv

REPO = Path(__file__).resolve().parents[2]
ENTRY = Path(os.environ.get("STAGE1_STACK_ENTRY") or REPO / "local" / "stack.py")
PORTS = {"postgres": 1, "questdb_http": 2, "questdb_pg": 3, "questdb_min": 4, "minio": 5, "minio_console": 6,
         "gateway": 7}


def load():
    """As tests/integration/private_stack.py does: a separate copy under a name of its own."""
    spec = importlib.util.spec_from_file_location(f"stack_test_{uuid.uuid4().hex[:8]}", ENTRY)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def stack(tmp_path, monkeypatch):
    monkeypatch.delenv("STAGE1_AUTH_ENABLED", raising=False)
    s = load()
    s.relocate(tmp_path / "state", PORTS, {})
    return s


def test_the_env_file_the_stack_writes_reads_back_the_same_through_the_shared_parser(stack):
    stack.write_env_file()
    written = stack.env_vars()
    assert read_dotenv(stack.ENV_FILE) == written == stack.read_kv(stack.ENV_FILE)
    assert written["STAGE1_PG_DSN"].startswith("postgresql://stage1:") and written["STAGE1_QDB_USER"] == ""
    assert oct(stack.ENV_FILE.stat().st_mode & 0o777) == "0o600"
    secrets = stack.read_kv(stack.SECRETS_FILE)
    assert parse_dotenv(stack.SECRETS_FILE.read_text()) == secrets and secrets["STAGE1_WEBHOOK_TOKEN"]


@pytest.mark.parametrize("value", ["two\nlines", "'quoted'", ' padded ', 'ends"'])
def test_the_stack_refuses_to_write_a_value_that_would_read_back_differently(stack, tmp_path, value):
    with pytest.raises(ValueError, match="STAGE1_X"):
        stack.write_kv(tmp_path / "x.env", {"STAGE1_X": value})


def test_relocating_one_copy_leaves_another_alone_and_old_names_are_live(tmp_path):
    a, b = load(), load()
    before = b.LOGS
    a.relocate(tmp_path / "elsewhere", PORTS, {"STAGE1_LOG_LEVEL": "INFO"})
    assert (tmp_path / "elsewhere" / "logs").resolve() == a.LOGS and a.PORTS["gateway"] == (7,)
    assert before == b.LOGS and b.PG_PORT == 55432
    lines = []
    a.say = lines.append  # the single-file version's hook: it must reach every module of the package
    a.VENV_PY = Path("/nonexistent/python")
    a.cmd_status([])
    assert len(lines) == 4 and all("stopped" in line for line in lines)
    with pytest.raises(a.StackError, match="/nonexistent/python"):
        a.venv_python()
    assert a.tool_env()["STAGE1_LOG_LEVEL"] == "INFO"


def test_the_stack_package_imports_only_the_standard_library():
    files = [ENTRY, *sorted((REPO / "local" / "stage1_stack").glob("*.py"))]
    assert len(files) >= 9
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                tops = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                tops = [node.module.split(".")[0]]
            else:
                continue
            for top in tops:
                assert top in sys.stdlib_module_names or top in {"__future__", "stage1_stack"}, f"{path}: {top}"


def test_no_module_of_the_stack_is_large():
    # The single file was 730 lines holding eight concerns.
    sizes = {p.name: len(p.read_text().splitlines()) for p in (REPO / "local" / "stage1_stack").glob("*.py")}
    assert max(sizes.values()) < 200, sizes
    assert len(ENTRY.read_text().splitlines()) < 100
