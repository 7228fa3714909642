"""Edge types of the datasets resource: the wire types of `stage1_wire.datasets` (CONTRACT.md)."""

from __future__ import annotations

from stage1_wire.datasets import *  # noqa: F403 - the wire module under the server's import path
