"""The one parser of the credential a request presents (docs/auth.md, "Two headers").

A token comes as `X-Stage1-Token: <token>` (the desktop client, scripts) or as
`Authorization: Bearer <token>` (browsers, curl, generic HTTP tools). The Lambda authorizer, the
local gateway (through that authorizer) and token issue read it through `presented_token` only.

Rules, checked before any database work:
- `Authorization` must be exactly `Bearer <one token>` (scheme case-insensitive, printable ASCII,
  at most `MAX_AUTHORIZATION_CHARS`); anything else there (`Basic ...`, `Bearer` alone, two tokens,
  huge, non-ASCII) is an invalid token, not "no token", so a wrong header is never ignored.
- both headers present: they must carry the same token, else 401 (which one would be meant is a
  guess, and a guess is how a request ends up acting as someone else).
- an empty header counts as absent. The token's own shape is `stage1.auth.tokens.well_formed`'s.
Reasons never contain the token.
"""

from __future__ import annotations

import re

from stage1.core.errors import Unauthorized

AUTHORIZATION_HEADER = "Authorization"
# "Bearer " + a token (46 characters) is 53; the slack covers extra spaces, and anything longer is
# refused before it is split or compared.
MAX_AUTHORIZATION_CHARS = 128
# RFC 7235 credentials: a scheme, one or more spaces, one token68-like word (printable ASCII).
_CREDENTIALS = re.compile(r"([!-~]+) +([!-~]+) *", re.ASCII)

INVALID_TOKEN = "invalid token"  # noqa: S105
MISSING_TOKEN = "missing token: send `Authorization: Bearer <token>` or the X-Stage1-Token header"  # noqa: S105
MALFORMED_AUTHORIZATION = "invalid token: the Authorization header must be `Bearer <token>`"
CONFLICTING_TOKENS = "conflicting credentials: X-Stage1-Token and Authorization carry different tokens"  # noqa: S105


def bearer_token(authorization: object) -> str | None:
    """The token of an `Authorization: Bearer <token>` value; None when the header is absent or
    empty; `Unauthorized` for any other value."""
    if authorization is None or authorization == "":
        return None
    if not isinstance(authorization, str) or len(authorization) > MAX_AUTHORIZATION_CHARS:
        raise Unauthorized(MALFORMED_AUTHORIZATION)
    match = _CREDENTIALS.fullmatch(authorization.strip(" "))
    if match is None or match.group(1).lower() != "bearer":
        raise Unauthorized(MALFORMED_AUTHORIZATION)
    return match.group(2)


def presented_token(x_stage1_token: object, authorization: object) -> str | None:
    """The token a request presents in either header (None: neither), or `Unauthorized` for a
    malformed Authorization header or two different tokens. The token's shape is checked later
    (`tokens.authenticate`), the same for both headers."""
    bearer = bearer_token(authorization)
    if x_stage1_token is None or x_stage1_token == "":
        return bearer
    if not isinstance(x_stage1_token, str):
        raise Unauthorized(INVALID_TOKEN)
    if bearer is not None and bearer != x_stage1_token:
        raise Unauthorized(CONFLICTING_TOKENS)
    return x_stage1_token
