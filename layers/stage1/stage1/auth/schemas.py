"""Token payloads at the edge (CONTRACT.md, Auth): the wire types of `stage1_wire.auth`."""

from __future__ import annotations

from stage1_wire.auth import *  # noqa: F403 - the wire module under the server's import path
