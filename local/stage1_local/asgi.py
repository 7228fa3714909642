"""ASGI helpers the local gateway's pieces share (gateway, events, jobs_local, security), kept apart
so that none of them imports the gateway module itself (the gateway imports them)."""

from __future__ import annotations

from typing import Any

import msgspec

from stage1.core.errors import to_stage1_error


async def send_error(send: Any, exc: BaseException) -> None:
    """The error's envelope `{"error", "details"}` with its status and headers."""
    err = to_stage1_error(exc)
    body = msgspec.json.encode(err.body())
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in err.headers().items()]
    await send({"type": "http.response.start", "status": err.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
