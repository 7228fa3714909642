"""API tokens in Postgres (`stage1_api_tokens`).

A token is `s1_` + 43 URL-safe characters from `secrets` (256 bits). Only its SHA-256 is stored
(a fast hash is right for a random 256-bit secret: nothing to brute-force), together with its first
characters (`token_prefix`) so a person can tell tokens apart in a listing. `authenticate` is the
one check both the Lambda authorizer and the local gateway run.
"""

# Only the constant column list `_COLUMNS` and fixed WHERE fragments are interpolated; every value
# is a bind parameter.
# ruff: noqa: S608

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from stage1.auth.credentials import INVALID_TOKEN, MISSING_TOKEN
from stage1.auth.schemas import SCOPES, TokenInfo, TokenIssued, TokenList
from stage1.core import db
from stage1.core.errors import BadRequest, NotFound, Unauthorized
from stage1.core.refs import as_uuid
from stage1.core.settings import get_settings
from stage1.core.times import iso

TOKEN_PREFIX = "s1_"  # noqa: S105 - the public marker of a token
_TOKEN_RE = re.compile(r"s1_[A-Za-z0-9_-]{43}", re.ASCII)
PREFIX_CHARS = 10
_COLUMNS = "token_id, name, token_prefix, scopes, created_at, expires_at, revoked_at, last_used_at"


@dataclass(frozen=True)
class Identity:
    """Who a valid token belongs to, as the authorizer passes it on."""

    token_id: str
    name: str
    scopes: tuple[str, ...]

    def context(self) -> dict[str, str]:
        """The authorizer's `context` (API Gateway passes it as `requestContext.authorizer.lambda`).
        Scopes are one space-separated string: context values are kept to plain strings."""
        return {"token_id": self.token_id, "token_name": self.name, "scopes": " ".join(self.scopes)}


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def well_formed(token: object) -> bool:
    """Shape check before any database work: garbage (any length, any characters, not even a
    string) is refused without a query."""
    return isinstance(token, str) and len(token) == len(TOKEN_PREFIX) + 43 and bool(_TOKEN_RE.fullmatch(token))


def normalize_scopes(scopes: list[str]) -> list[str]:
    """Deduplicated, in the canonical order read, write, admin."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise BadRequest("unknown scope", {"unknown_scopes": unknown, "allowed": list(SCOPES)})
    return [s for s in SCOPES if s in scopes]




def _status(row: dict[str, Any], now: datetime) -> str:
    if row["revoked_at"] is not None:
        return "revoked"
    if row["expires_at"] is not None and row["expires_at"] <= now:
        return "expired"
    return "active"


def _info(row: dict[str, Any], now: datetime) -> TokenInfo:
    return TokenInfo(
        token_id=str(row["token_id"]), name=row["name"], token_prefix=row["token_prefix"],
        scopes=normalize_scopes(list(row["scopes"])), status=_status(row, now), created_at=iso(row["created_at"]),
        expires_at=iso(row["expires_at"]), revoked_at=iso(row["revoked_at"]), last_used_at=iso(row["last_used_at"]),
    )


def issue(name: str, scopes: list[str], expires_in: int | None = None) -> TokenIssued:
    """Create a token; the only time the token itself exists outside the client."""
    scopes = normalize_scopes(scopes)
    if not scopes:
        raise BadRequest("at least one scope is required", {"allowed": list(SCOPES)})
    token = new_token()
    with db.connection() as conn:
        row = conn.execute(
            "insert into stage1_api_tokens (name, token_hash, token_prefix, scopes, expires_at) "
            "values (%s, %s, %s, %s, case when %s::bigint is null then null "
            "else now() + make_interval(secs => %s::bigint) end) "
            f"returning {_COLUMNS}",
            (name, hash_token(token), token[:PREFIX_CHARS], scopes, expires_in, expires_in),
        ).fetchone()
    assert row is not None
    return TokenIssued(
        token=token, token_id=str(row["token_id"]), name=row["name"], token_prefix=row["token_prefix"],
        scopes=scopes, created_at=iso(row["created_at"]), expires_at=iso(row["expires_at"]),
    )


def authenticate(token: str | None) -> Identity:
    """The token's identity, or `Unauthorized` saying why (missing, malformed, unknown, expired,
    revoked). Records `last_used_at` at most every `token_touch_seconds`."""
    if not token:
        raise Unauthorized(MISSING_TOKEN)
    if not well_formed(token):
        raise Unauthorized(INVALID_TOKEN)
    with db.connection() as conn:
        row = conn.execute(
            "select token_id, name, scopes, expires_at, revoked_at, last_used_at, now() as now "
            "from stage1_api_tokens where token_hash = %s",
            (hash_token(token),),
        ).fetchone()
        if row is None:
            raise Unauthorized(INVALID_TOKEN)
        if row["revoked_at"] is not None:
            raise Unauthorized("token revoked")
        if row["expires_at"] is not None and row["expires_at"] <= row["now"]:
            raise Unauthorized("token expired")
        touch = timedelta(seconds=get_settings().auth.token_touch_seconds)
        if row["last_used_at"] is None or row["now"] - row["last_used_at"] >= touch:
            conn.execute("update stage1_api_tokens set last_used_at = now() where token_id = %s", (row["token_id"],))
    return Identity(str(row["token_id"]), row["name"], tuple(normalize_scopes(list(row["scopes"]))))


def list_tokens(*, limit: int, offset: int, include_inactive: bool) -> TokenList:
    where = "" if include_inactive else "where revoked_at is null and (expires_at is null or expires_at > now())"
    with db.connection() as conn:
        now = conn.execute("select now() as now").fetchone()["now"]  # type: ignore[index]
        total = conn.execute(f"select count(*) as n from stage1_api_tokens {where}").fetchone()["n"]  # type: ignore[index]
        rows = conn.execute(
            f"select {_COLUMNS} from stage1_api_tokens {where} "
            "order by created_at desc, token_id limit %s offset %s",
            (limit, offset),
        ).fetchall()
    return TokenList(total=total, limit=limit, offset=offset, items=[_info(r, now) for r in rows])


def parse_token_id(token_id: str) -> uuid.UUID:
    if (parsed := as_uuid(token_id)) is None:
        raise BadRequest("invalid token_id: expected a UUID", {"token_id": token_id[:80]})
    return parsed


def revoke(token_id: str) -> TokenInfo:
    """Revoke a token (idempotent: revoking twice keeps the first `revoked_at`)."""
    tid = parse_token_id(token_id)
    with db.connection() as conn:
        row = conn.execute(
            "update stage1_api_tokens set revoked_at = coalesce(revoked_at, now()) where token_id = %s "
            f"returning {_COLUMNS}, now() as now",
            (tid,),
        ).fetchone()
    if row is None:
        raise NotFound("no such token", {"token_id": str(tid)})
    return _info(row, row["now"])
