"""Job payloads at the edge (CONTRACT.md, Jobs): the wire types of `stage1_wire.jobs`."""

from __future__ import annotations

from stage1_wire.jobs import (
    JobAccepted,
    JobList,
    JobOut,
)

__all__ = ["JobAccepted", "JobList", "JobOut"]
