"""docs/client.md's tutorial runs: every ```python block of its "Tutorial" section, in order, in one
namespace, against the real stack through the gateway (STAGE1_URL / STAGE1_TOKEN point the tutorial's
`Client()` at it, as a researcher's environment or profile would)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "client.md"


def tutorial_blocks() -> list[str]:
    text = DOC.read_text()
    start = text.index("## Tutorial")
    end = text.find("\n## ", start + 1)
    section = text[start:] if end < 0 else text[start:end]
    return re.findall(r"^```python\n(.*?)^```", section, re.S | re.M)


def test_the_tutorial_has_its_steps():
    assert len(tutorial_blocks()) >= 6


def test_the_tutorial_runs(gateway_url, api_token, monkeypatch, tmp_path):
    for name in ("STAGE1_GATEWAY_URL", "STAGE1_ENV_FILE", "STAGE1_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STAGE1_URL", gateway_url)
    monkeypatch.setenv("STAGE1_TOKEN", api_token)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.chdir(tmp_path)  # predictions.png, if matplotlib is there, lands here
    namespace: dict = {"__name__": "tutorial"}
    blocks = tutorial_blocks()
    try:
        for n, block in enumerate(blocks, start=1):
            try:
                exec(compile(block, f"docs/client.md tutorial block {n}", "exec"), namespace)  # noqa: S102
            except Exception as exc:
                pytest.fail(f"tutorial block {n} failed: {type(exc).__name__}: {exc}\n{block}")
        assert len(namespace["runs"]) == 3 and namespace["table"]["differs"].any()
    finally:  # a block that failed before the tutorial's own tidy-up leaves its dataset: delete it
        if "slug" in namespace:
            import contextlib

            from stage1_client import ApiError, Client

            with Client(gateway_url, api_token) as client, contextlib.suppress(ApiError):
                client.datasets.delete(namespace["slug"], cascade=True, drop_questdb=True)
