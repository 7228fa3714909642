"""The client's one retry policy: which failures are retried, how long to wait, when to stop.

Every request of `Core` (JSON calls, streamed downloads, job polling) goes through `RetryPolicy.decide`;
nothing else in the client retries HTTP requests (presigned part uploads have their own per-part
retry in `uploads`, since they go to the object store, not to the API).

- A refused or failed connection (`httpx.ConnectError`, `ConnectTimeout`): the request was never
  sent, so it is retried for any method.
- 429 (rate limited): the server did not run the request, so it is retried for any method, after
  its `Retry-After`.
- 503 (a backing service unavailable), 502/504 (the gateway's own), a read timeout or a dropped
  connection: the request may have run, so only idempotent methods (GET, HEAD, OPTIONS, PUT,
  DELETE) are retried — or a request its caller marked `safe=True` (e.g. a POST of a read-only query).
- `Retry-After` (seconds or an HTTP date) is honoured up to `max_retry_after`; a longer one is not
  waited for (the error is raised, naming the wait). Without it: exponential back-off with jitter.
- At most `attempts` tries in all, and never beyond `total_seconds` since the first.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# Failures that mean the request never reached the server.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)
# Failures after the request may have been sent (the server may have run it).
_MAYBE_SENT = (httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
_ALWAYS_STATUS = frozenset({429})
_IDEMPOTENT_STATUS = frozenset({502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4               # tries in all (1 = no retry)
    total_seconds: float = 60.0     # no retry starts after this long since the first try
    backoff: float = 0.25           # first back-off; doubles each try, with up to 50% jitter
    max_backoff: float = 8.0
    max_retry_after: float = 30.0   # a longer Retry-After is not waited for

    def retryable(self, method: str, *, safe: bool = False, status: int | None = None,
                  error: BaseException | None = None) -> bool:
        """Whether this failure may be retried at all (before counting attempts or time)."""
        idempotent = safe or method.upper() in IDEMPOTENT
        if error is not None:
            return isinstance(error, _NOT_SENT) or (idempotent and isinstance(error, _MAYBE_SENT))
        if status in _ALWAYS_STATUS:
            return True
        return idempotent and status in _IDEMPOTENT_STATUS

    def delay(self, attempt: int, retry_after: str | None = None) -> float | None:
        """Seconds to wait before try `attempt + 1` (0-based `attempt` just failed); None: do not retry
        (the server asked for longer than `max_retry_after`)."""
        asked = parse_retry_after(retry_after)
        if asked is not None:
            return asked if asked <= self.max_retry_after else None
        base = min(self.backoff * 2**attempt, self.max_backoff)
        return base * (1 + random.random() / 2)  # noqa: S311 - jitter, not cryptography

    def decide(self, attempt: int, started: float, method: str, *, safe: bool = False, status: int | None = None,
               error: BaseException | None = None, retry_after: str | None = None) -> float | None:
        """The wait before retrying, or None to give up and raise now."""
        if attempt + 1 >= self.attempts or not self.retryable(method, safe=safe, status=status, error=error):
            return None
        wait = self.delay(attempt, retry_after)
        if wait is None or time.monotonic() - started + wait > self.total_seconds:
            return None
        return wait


NO_RETRY = RetryPolicy(attempts=1)


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` as seconds: an integer, or an HTTP date (seconds from now, at least 0)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())
