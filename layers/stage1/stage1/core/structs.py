"""The base Struct for every request and response body: `stage1_wire.base` (shared with the client)."""

from __future__ import annotations

from stage1_wire.base import Model, Page

__all__ = ["Model", "Page"]
