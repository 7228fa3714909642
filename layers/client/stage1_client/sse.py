"""Server-Sent Events: a line parser, and the job event the gateway's `GET /api/events` sends."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import msgspec


class JobEvent(msgspec.Struct, kw_only=True):
    """`data` of an `event: job` message: what changed on a job (migration 0010's NOTIFY payload).
    The full record stays `GET /api/jobs/{id}` (`stage1_wire.jobs.JobOut`)."""

    job_id: str
    job_type: str = ""
    status: str
    progress: int = 0
    total: int | None = None


@dataclass(frozen=True)
class Message:
    """One SSE message. `event` is None for a comment (the heartbeat), which carries no data."""

    event: str | None
    data: str = ""
    id: str | None = None
    comment: str | None = None


def parse(lines: Iterable[str]) -> Iterator[Message]:
    """Messages from the lines of a `text/event-stream` (the WHATWG rules that matter here:
    `field: value`, multi-line `data`, blank line dispatches, `:` comments)."""
    event: str | None = None
    data: list[str] = []
    last_id: str | None = None
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data or event is not None:
                yield Message(event or "message", "\n".join(data), last_id)
            event, data = None, []
            continue
        if line.startswith(":"):
            yield Message(None, comment=line[1:].strip())
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            last_id = value
        # `retry` and unknown fields: nothing to do for this client
