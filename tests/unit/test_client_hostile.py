"""The client's hostile corpus (tests/hostile/client.txt): profile names, column and table names that
reach SQL text, config files — each refused before any request or write, or allowed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hostile"))
from corpus import load  # noqa: E402

from stage1_client.config import ConfigError, check_name, load_profiles  # noqa: E402
from stage1_client.errors import ApiError  # noqa: E402
from stage1_client.framed import time_sql  # noqa: E402

CASES = load("client.txt")


def _attempt(area: str, text: str, tmp_path: Path) -> None:
    if area == "profile":
        check_name(text)
    elif area == "column":
        time_sql("t", columns=[text])
    elif area == "table":
        time_sql(text)
    elif area == "toml":
        path = tmp_path / "config.toml"
        path.write_text(text)
        path.chmod(0o600)
        load_profiles(path)
    else:
        raise AssertionError(area)


@pytest.mark.parametrize("case", CASES, ids=[f"line{c.line}" for c in CASES])
def test_hostile_client_inputs(case, tmp_path):
    if case.outcome == "allow":
        _attempt(case.reason, case.text, tmp_path)
        return
    with pytest.raises((ConfigError, ApiError)) as info:
        _attempt(case.reason, case.text, tmp_path)
    assert str(info.value)  # a message, one line
    assert "\n" not in str(info.value) or isinstance(info.value, ConfigError)


def test_help_loads_no_http_no_rich_no_schemas():
    """What keeps `stage1 --help` under 150 ms (tests/benchmarks/bench_cli_help.py measures it): building
    the whole parser imports neither httpx, rich, msgspec, the wire schemas nor pyarrow/pandas."""
    probe = ("import sys; from stage1_client.cli import build_parser; build_parser(); "
             "print(sorted(m for m in ('httpx', 'rich', 'msgspec', 'pyarrow', 'pandas', 'stage1_wire') "
             "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
