"""ILP over HTTP without the `questdb` client: line protocol built here, POSTed to QuestDB's `/write`.

The API functions' Lambda layer does not carry the `questdb` client (its wheels need glibc 2.28,
newer than the python3.11 runtime's, and it pulls in numpy; layers/stage1/requirements.txt), so
the small inline writes of the API (a run's predictions) go through httpx. One request is one
QuestDB transaction per table: either every line is committed to the WAL or none is.

Only already-validated values reach a line: table and column names match `[a-z0-9_]`, integers
are Python ints, floats are finite, timestamps are non-negative microseconds.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping

import httpx
import msgspec

from stage1.core.errors import ServiceUnavailable
from stage1.core.questdb import QuestDBError, ident
from stage1.core.settings import get_settings

_client: httpx.Client | None = None
_lock = threading.Lock()


def _http() -> httpx.Client:
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                settings = get_settings()
                auth = (settings.qdb_user, settings.qdb_password) if settings.qdb_user else None
                _client = httpx.Client(base_url=settings.qdb_http_url.rstrip("/"), auth=auth)
    return _client


def line(table: str, fields: Mapping[str, int | float], ts_micros: int) -> str:
    """One ILP line: `table f1=1i,f2=0.5 <µs>`. Ints get the `i` suffix; floats must be finite."""
    parts = []
    for name, value in fields.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"unsupported ILP value for {name}: {type(value).__name__}")
        if isinstance(value, int):
            parts.append(f"{name}={value}i")
        else:
            if not math.isfinite(value):
                raise ValueError(f"non-finite value for {name}")
            parts.append(f"{name}={value!r}")
    if not parts:
        raise ValueError("an ILP line needs at least one field")
    return f"{table} {','.join(parts)} {int(ts_micros)}\n"


class _WriteError(msgspec.Struct):
    code: str = ""
    message: str = ""
    line: int | None = None
    errorId: str = ""  # noqa: N815 - QuestDB's field name


def write(table: str, lines: Iterable[str], *, timeout: float) -> None:
    """POST the lines to `/write?precision=u` as one request (one transaction for the table).

    QuestDB refusing a line is a 400 relaying its message (`details.questdb`); QuestDB unreachable,
    timing out or answering 5xx is a 503 naming questdb."""
    ident(table)
    body = "".join(lines).encode()
    try:
        response = _http().post("/write", params={"precision": "u"}, content=body,
                                headers={"content-type": "text/plain; charset=utf-8"},
                                timeout=httpx.Timeout(timeout, connect=3.0))
    except httpx.TransportError as exc:
        raise ServiceUnavailable("questdb", f"write failed: {exc or type(exc).__name__}") from exc
    if response.status_code in (200, 204):
        return
    text = response.text[:1000]
    if response.status_code >= 500:
        raise ServiceUnavailable("questdb", f"write failed: HTTP {response.status_code}", {"questdb": text})
    try:
        error = msgspec.json.decode(response.content, type=_WriteError)
        message = error.message or text
    except msgspec.DecodeError:
        message = text
    raise QuestDBError("questdb rejected the rows", message)
