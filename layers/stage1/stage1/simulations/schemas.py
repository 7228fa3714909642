"""Edge types of the simulations resource: the wire types of `stage1_wire.simulations`."""

from __future__ import annotations

from stage1_wire.simulations import *  # noqa: F403 - the wire module under the server's import path
