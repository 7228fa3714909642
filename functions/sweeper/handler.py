"""Sweeper function (scheduled): reclaims jobs of dead workers, re-dispatches jobs whose event
was lost or whose outage backoff is over, fails uploads that never arrived. See stage1.jobs.sweeper.

The trigger (EventBridge's scheduled event, or the local gateway's loop) is decoded once here; its
content does not matter, but anything that is not a scheduled event is logged and refused."""

from __future__ import annotations

from typing import Any

from stage1.core.logging import configure_logging, get_logger
from stage1.core.settings import get_settings
from stage1.jobs.events import ScheduledEvent, decode_as
from stage1.jobs.sweeper import sweep_once
from stage1.uploads.service import ready_for_import

log = get_logger("sweeper")


def handler(event: Any, context: Any) -> dict[str, Any]:
    configure_logging(get_settings().service.log_level)
    match decode_as({} if event is None else event, ScheduledEvent):
        case ScheduledEvent():
            return sweep_once({"import": ready_for_import})
        case _:
            log.warning("sweeper: not a scheduled event; refused")
            return {"status": "IGNORED"}
