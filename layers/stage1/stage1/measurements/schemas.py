"""QuestDB table descriptions: the wire types of `stage1_wire.measurements`."""

from __future__ import annotations

from stage1_wire.measurements import *  # noqa: F403 - the wire module under the server's import path
