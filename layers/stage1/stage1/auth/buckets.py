"""Token buckets shared by every process, kept in Postgres (`stage1_rate_buckets`, migration 0019).

The same rule as the in-process `stage1.auth.ratelimit.RateLimiter` (a bucket starts full at
`burst`, refills at `rate` per second, a hit takes one if it can; otherwise the answer is the whole
seconds until one is back), but one budget for every Lambda container and every local gateway:
N warm containers no longer give a guesser N budgets.

Each hit is ONE statement (`INSERT ... ON CONFLICT DO UPDATE ... RETURNING`): Postgres locks the
row, refills it by the time elapsed on its own clock (one clock for all containers; a container's
`time.monotonic()` would not compare with another's), takes a token if there is one, and returns
the outcome. There is no read-then-write a second container could slip between. It costs one
round trip per hit.

Rows do not grow without bound: a bucket nobody hit for burst/rate seconds is full again, which
is what a missing row means, so `sweep` deletes it. The sweeper does it (every minute on AWS, every
few seconds locally), not the hit: a hit stays one statement, and how many rows can pile up between
two sweeps is bounded by the requests API Gateway lets through in burst/rate seconds.
"""

# Only the constant fragment `_LEVEL` is interpolated into the statement; every value is a bind
# parameter.
# ruff: noqa: S608

from __future__ import annotations

from dataclasses import dataclass

from stage1.core import db
from stage1.core.logging import get_logger, log_fields

log = get_logger("auth.buckets")

# The level now: refilled by the seconds since the row's stamp (never negative: a transaction that
# began before another's stamp waited for that one's row lock), capped at the burst.
_LEVEL = ("least(%(burst)s, b.level + %(rate)s * "
          "greatest(0, extract(epoch from now() - b.stamp))::double precision)")

_HIT = f"""
insert into stage1_rate_buckets as b (bucket, key, level, stamp, allowed, full_at)
values (%(bucket)s, %(key)s, %(burst)s - 1, now(), true, now() + make_interval(secs => %(full)s))
on conflict (bucket, key) do update set
    level = {_LEVEL} - ({_LEVEL} >= 1)::int,
    allowed = {_LEVEL} >= 1,
    stamp = greatest(b.stamp, now()),
    full_at = greatest(b.stamp, now()) + make_interval(secs => %(full)s)
returning case when allowed then 0 else greatest(1, ceil((1 - level) / %(rate)s))::int end as wait
"""

_SWEEP = """
delete from stage1_rate_buckets where (bucket, key) in (
    select bucket, key from stage1_rate_buckets where full_at <= now()
    order by full_at limit %(limit)s for update skip locked)
"""


@dataclass(frozen=True)
class SharedBucket:
    """`rate` tokens per second refill each key's bucket up to `burst`; a hit takes one."""

    name: str
    rate: float
    burst: int

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")

    def hit(self, key: str) -> int:
        """Take one from the key's bucket: 0 if allowed, else the whole seconds to wait (Retry-After).
        Postgres unreachable raises its driver's error, which the functions answer as a 503 naming
        postgres (stage1.core.errors): no limit, no answer."""
        params = {"bucket": self.name, "key": key, "rate": float(self.rate), "burst": float(self.burst),
                  "full": self.burst / self.rate}
        with db.connection() as conn:
            row = conn.execute(_HIT, params).fetchone()
        assert row is not None
        return int(row["wait"])


def per_minute(name: str, count: int) -> SharedBucket:
    """A bucket of `count` a minute, all of them at once after a quiet minute."""
    count = max(1, count)
    return SharedBucket(name, count / 60.0, count)


def sweep(limit: int = 5000) -> int:
    """Delete up to `limit` buckets that are full again (the oldest first); how many went."""
    with db.connection() as conn:
        deleted = conn.execute(_SWEEP, {"limit": limit}).rowcount
    # Routine on every pass; a pass that hits its limit means many sources lately (a flood).
    log_fields(log, 30 if deleted >= limit else 10, "rate buckets swept", deleted=deleted)
    return deleted
