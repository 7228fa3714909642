"""Token payloads at the edge (CONTRACT.md, Auth)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from stage1_wire.base import Model, Page

# The request header that carries an API token (the gateway and the authorizer read it, the client sends it).
TOKEN_HEADER = "X-Stage1-Token"  # noqa: S105 - a header name
Scope = Literal["read", "write", "admin"]
SCOPES: tuple[str, ...] = ("read", "write", "admin")
# Ten years: long enough for any real expiry, small enough to stay a valid timestamp.
MAX_EXPIRES_IN = 10 * 365 * 86400


class TokenCreate(Model):
    """`POST /api/auth/token`. Without `expires_in` the token never expires (until revoked)."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100, description="A label: who or what uses it")]
    scopes: Annotated[list[Scope], msgspec.Meta(min_length=1, max_length=3)]
    expires_in: Annotated[int, msgspec.Meta(ge=1, le=MAX_EXPIRES_IN, description="Lifetime in seconds")] | None = None


class TokenInfo(Model):
    """A token as listed: never the token itself, only its first characters (`token_prefix`)."""

    token_id: str
    name: str
    token_prefix: str
    scopes: list[str]
    status: Literal["active", "expired", "revoked"]
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    last_used_at: str | None


class TokenIssued(Model):
    """The answer to a token issue: `token` is shown this once and stored only as a SHA-256 hash."""

    token: str
    token_id: str
    name: str
    token_prefix: str
    scopes: list[str]
    created_at: str
    expires_at: str | None


class TokenList(Page):
    items: list[TokenInfo]
