"""Edge types of the walk-forward runs resource: the wire types of `stage1_wire.runs` (CONTRACT.md)."""

from __future__ import annotations

from stage1_wire.runs import *  # noqa: F403 - the wire module under the server's import path
