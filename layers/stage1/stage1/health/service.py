"""Readiness checks: each backing service answers a trivial request, with a short timeout."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from stage1.core.errors import to_stage1_error
from stage1.core.settings import get_settings
from stage1.health.schemas import Readiness


# The clients are imported by the checks, not by this module: liveness (GET /api/health, the function's
# usual first request) needs none of psycopg, httpx or boto3, which are most of a cold start.
def check_postgres() -> None:
    from stage1.core import db

    with db.connection() as conn:
        conn.execute("select 1")


def check_questdb() -> None:
    from stage1.core import questdb

    questdb.get_questdb().exec("select 1", timeout=3)


def check_object_store() -> None:
    from stage1.core import storage

    storage.get_s3().head_bucket(Bucket=get_settings().store.bucket)


def _outcome(check: Callable[[], None]) -> str:
    try:
        check()
    except Exception as exc:  # a readiness probe reports every failure, it never raises
        return to_stage1_error(exc).message
    return "ok"


def readiness() -> Readiness:
    checks = {"postgres": check_postgres, "questdb": check_questdb, "object_store": check_object_store}
    # In parallel: a probe's latency is that of the slowest service, not the sum.
    with ThreadPoolExecutor(max_workers=len(checks)) as pool:
        results = dict(zip(checks, pool.map(_outcome, checks.values()), strict=True))
    status = "ok" if all(v == "ok" for v in results.values()) else "degraded"
    return Readiness(status=status, **results)
