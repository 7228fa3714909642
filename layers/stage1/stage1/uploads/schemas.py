"""Upload requests and responses (CONTRACT.md, Uploads): the wire types of `stage1_wire.uploads`."""

from __future__ import annotations

from stage1_wire.uploads import *  # noqa: F403 - the wire module under the server's import path
