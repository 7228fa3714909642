"""Job payloads at the edge (CONTRACT.md, Jobs): the wire types of `stage1_wire.jobs`."""

from __future__ import annotations

from stage1_wire.jobs import *  # noqa: F403 - the wire module under the server's import path
