"""Liveness and readiness answers (`GET /api/health`, `/api/health/ready`)."""

from __future__ import annotations

from typing import Literal

from stage1_wire.base import Model


class Liveness(Model):
    version: str
    status: Literal["ok"] = "ok"


class Readiness(Model):
    """Each service is "ok" or the error that made the check fail."""

    status: Literal["ok", "degraded"]
    postgres: str
    questdb: str
    object_store: str
