"""SQL query/export bodies: the wire types of `stage1_wire.sql`."""

from __future__ import annotations

from stage1_wire.sql import (
    ExportIn,
    QueryColumn,
    QueryIn,
    QueryOut,
)

__all__ = ["ExportIn", "QueryColumn", "QueryIn", "QueryOut"]
