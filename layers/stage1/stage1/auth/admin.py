"""The shared admin secret that authorises token issue: compared in constant time, and guessing is
limited per client address (a per-process limit: see stage1.auth.ratelimit)."""

from __future__ import annotations

import hmac

from stage1.auth.ratelimit import RateLimiter
from stage1.core.errors import TooManyRequests, Unauthorized
from stage1.core.lazy import lazy
from stage1.core.settings import get_settings


@lazy
def _failures() -> RateLimiter:
    per_minute = max(1, get_settings().admin_secret_attempts_per_minute)
    return RateLimiter(per_minute / 60.0, per_minute)


def secret_matches(provided: str, expected: str) -> bool:
    """Constant-time comparison; an unset secret matches nothing."""
    return bool(expected) and hmac.compare_digest(provided.encode(), expected.encode())


def check_admin_secret(provided: str, client: str) -> None:
    """Pass, or raise 401 (wrong secret) / 429 (too many wrong secrets from this client lately).
    Only failures count, so a client that knows the secret is never slowed down by this."""
    expected = get_settings().admin_secret
    limiter = _failures()
    if (wait := limiter.wait(client)) > 0:
        raise TooManyRequests("too many wrong admin secrets: try again later", wait)
    if not expected:
        raise Unauthorized("token issue by admin secret is disabled: STAGE1_ADMIN_SECRET is not set")
    if not secret_matches(provided, expected):
        limiter.hit(client)
        raise Unauthorized("invalid admin secret")
