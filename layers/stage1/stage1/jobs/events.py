"""The events that start job workers, typed: decoded once, at the handler (`decode_job_event`).

`JobEvent` is what `stage1.jobs.dispatch` sends a worker function (built only by `job_event`);
`ScheduledEvent` is the sweeper's trigger (EventBridge on AWS, the gateway's loop locally).
"""

from __future__ import annotations

from typing import Any

import msgspec

from stage1.core.events import decode_as, to_wire

__all__ = ["JobEvent", "ScheduledEvent", "decode_as", "decode_job_event", "job_event", "to_wire"]


class JobEvent(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """`{"job_id": ..., "job_type": ...}`: run this job (the worker claims it, so duplicates are harmless)."""

    job_id: str
    job_type: str | None = None


class ScheduledEvent(msgspec.Struct, frozen=True, rename={"detail_type": "detail-type"}):
    """A scheduled trigger: EventBridge's `{"source": "aws.events", "detail-type": "Scheduled Event", ...}`
    or the local gateway's `{"source": "local.sweeper"}`; its content does not matter."""

    source: str | None = None
    detail_type: str | None = None


def job_event(job_id: str, job_type: str | None) -> JobEvent:
    return JobEvent(job_id=job_id, job_type=job_type)


def decode_job_event(event: Any) -> JobEvent | None:
    return decode_as(event, JobEvent)
