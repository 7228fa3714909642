"""The shared admin secret that authorises token issue: compared in constant time, limited per
source address by token buckets every process shares (in Postgres: stage1.auth.buckets).

The secret is checked first, and the limits apply by outcome: wrong secrets (and bad tokens on the
issue route) from one source get `admin_secret_attempts_per_minute` before that source is answered
429; a correct secret has its own, generous bucket (`admin_secret_issues_per_minute`). So a guesser
behind a shared address (NAT, proxy) cannot lock out the colleague who knows the secret, and a
guesser's own budget does not grow with it. The budget is one per source for all Lambda containers
and local gateways together (it was one per process, so N warm containers gave N budgets), at the
cost of one Postgres round trip per attempt; with Postgres down the route answers 503 (no limit,
no answer). Guessing stays bounded by the secret's entropy (the template asks for 32+ characters)
more than by any limit.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

from stage1.auth.buckets import SharedBucket, per_minute
from stage1.core.errors import TooManyRequests, Unauthorized
from stage1.core.settings import get_settings

# The buckets' names in stage1_rate_buckets (one row per name and source).
FAILURES = "admin_secret_failures"
ISSUES = "admin_secret_issues"


def _failures() -> SharedBucket:
    return per_minute(FAILURES, get_settings().auth.admin_secret_attempts_per_minute)


def _issues() -> SharedBucket:
    return per_minute(ISSUES, get_settings().auth.admin_secret_issues_per_minute)


def secret_matches(provided: str, expected: str) -> bool:
    """Constant-time comparison of digests (so neither the content nor the length of the secret
    shows in the timing, and any header bytes compare without error); an unset secret matches nothing."""
    if not expected:
        return False
    digest = lambda s: hashlib.sha256(s.encode("utf-8", "surrogateescape")).digest()  # noqa: E731
    return hmac.compare_digest(digest(provided), digest(expected))


def source_key(client: str) -> str:
    """The bucket of a source address: an IPv4 address, or an IPv6 address's /64 (one host usually
    holds a whole /64, so per-address buckets would let it guess 2^64 times as often)."""
    try:
        address = ipaddress.ip_address(client.strip())
    except ValueError:
        return client[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def record_failure(client: str, message: str) -> Unauthorized | TooManyRequests:
    """The error for a failed credential from `client`: 401, or 429 once it failed too often."""
    if (wait := _failures().hit(source_key(client))) > 0:
        return TooManyRequests("too many failed attempts from this address: try again later", wait)
    return Unauthorized(message)


def check_admin_secret(provided: str, client: str) -> None:
    """Pass, or raise 401 (wrong secret) / 429 (too many wrong secrets, or too many issues, from
    this client lately)."""
    expected = get_settings().auth.admin_secret
    if not expected:
        raise Unauthorized("token issue by admin secret is disabled: STAGE1_ADMIN_SECRET is not set")
    if secret_matches(provided, expected):
        if (wait := _issues().hit(source_key(client))) > 0:
            raise TooManyRequests("too many tokens issued from this address: try again later", wait)
        return
    raise record_failure(client, "invalid admin secret")
