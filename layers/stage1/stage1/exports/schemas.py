"""The export job's wire types (`stage1_wire.exports`). The `mode` query parameter, a Litestar type,
is the web layer's (`stage1.web.params.ModeParam`)."""

from __future__ import annotations

from stage1_wire.exports import (
    ExportResult,
    Mode,
)

__all__ = ["ExportResult", "Mode"]
