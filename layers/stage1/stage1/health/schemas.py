"""Liveness and readiness answers: the wire types of `stage1_wire.health`."""

from __future__ import annotations

from stage1_wire.health import *  # noqa: F403 - the wire module under the server's import path
