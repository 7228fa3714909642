"""Job payloads at the edge: exactly the fields of CONTRACT.md (Jobs)."""

from __future__ import annotations

from typing import Any

from stage1_wire.base import Model, Page


class JobOut(Model):
    job_id: str
    job_type: str
    status: str
    progress: int
    total: int | None
    result: Any
    error: str | None
    attempts: int
    created_at: str
    updated_at: str
    started_at: str | None
    completed_at: str | None


class JobList(Page):
    items: list[JobOut]


class JobAccepted(Model):
    """Returned when work is queued: where to poll for it."""

    job_id: str
    status: str
    poll_url: str
    message: str
