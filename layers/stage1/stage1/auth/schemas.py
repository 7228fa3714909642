"""Token payloads at the edge (CONTRACT.md, Auth): the wire types of `stage1_wire.auth`."""

from __future__ import annotations

from stage1_wire.auth import (
    MAX_EXPIRES_IN,
    SCOPES,
    Scope,
    TokenCreate,
    TokenInfo,
    TokenIssued,
    TokenList,
)

__all__ = ["MAX_EXPIRES_IN", "SCOPES", "Scope", "TokenCreate", "TokenInfo", "TokenIssued", "TokenList"]
