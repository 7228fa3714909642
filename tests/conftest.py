"""Shared fixtures. Integration tests need the local stack (`make up`); `make test` starts it."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path

import pytest

EVENTS = Path(__file__).parent / "events"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def event():
    """Load a recorded Lambda event from tests/events/."""

    def load(name: str) -> dict:
        return json.loads((EVENTS / name).read_text())

    return load


@pytest.fixture(autouse=True)
def _current_event_loop():
    """Mangum's handler runs on the thread's current event loop, which an `asyncio.run()` in an earlier
    test leaves unset (a Lambda process always has one): make sure each test starts with one."""
    try:
        asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())
    yield


@pytest.fixture
def unique() -> str:
    """A short unique suffix: tests share one stack and must not collide."""
    return uuid.uuid4().hex[:10]


# Settings come from the file the local stack writes, unless the caller chose another.
os.environ.setdefault("STAGE1_ENV_FILE", str(Path(__file__).resolve().parents[1] / ".state" / "stage1.env"))
