"""Sweeper function (scheduled): reclaims jobs of dead workers, re-dispatches jobs whose event
was lost, fails uploads that never arrived. See stage1.jobs.sweeper."""

from __future__ import annotations

from typing import Any

from stage1.core.logging import configure_logging
from stage1.core.settings import get_settings
from stage1.jobs.sweeper import sweep_once
from stage1.uploads.service import ready_for_import


def handler(event: dict[str, Any] | None, context: Any) -> dict[str, Any]:
    configure_logging(get_settings().service.log_level)
    return sweep_once({"import": ready_for_import})
