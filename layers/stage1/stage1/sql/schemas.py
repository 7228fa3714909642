"""SQL query/export bodies: the wire types of `stage1_wire.sql`."""

from __future__ import annotations

from stage1_wire.sql import *  # noqa: F403 - the wire module under the server's import path
