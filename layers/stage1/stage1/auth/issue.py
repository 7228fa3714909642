"""`POST /api/auth/token`: who may issue a token (the route has no authorizer in template.yaml: it
is how the first token is made), then the issue itself.

Either the admin secret (constant-time compare, failures limited per source address, a correct
secret never locked out by them: `stage1.auth.admin`), or else a token with the `admin` scope, in
either header (`stage1.auth.credentials`; a bad one counts as a failure of that source too)."""

from __future__ import annotations

from stage1.auth.admin import check_admin_secret, record_failure
from stage1.auth.credentials import presented_token
from stage1.auth.schemas import TokenCreate, TokenIssued
from stage1.auth.tokens import authenticate, issue
from stage1.core.errors import Forbidden, Unauthorized


def authorize_issue(secret: str | None, token: str | None, client: str, authorization: str | None = None) -> None:
    """`token` is the X-Stage1-Token header, `authorization` the Authorization header (either may
    carry the admin token: stage1.auth.credentials)."""
    if secret is not None:
        check_admin_secret(secret, client)
        return
    try:
        presented = presented_token(token, authorization)
    except Unauthorized as exc:
        raise record_failure(client, exc.message) from None
    if not presented:
        raise Unauthorized("send the admin secret (X-Stage1-Admin-Secret) or an admin token "
                           "(Authorization: Bearer, or X-Stage1-Token)")
    try:
        identity = authenticate(presented)
    except Unauthorized as exc:
        raise record_failure(client, exc.message) from None
    if "admin" not in identity.scopes:
        raise Forbidden("issuing tokens needs the 'admin' scope",
                        {"required": "admin", "scopes": list(identity.scopes)})


def issue_token(body: TokenCreate, *, secret: str | None, token: str | None, client: str,
                authorization: str | None = None) -> TokenIssued:
    """Check the caller's credentials, then issue a token (returned once)."""
    authorize_issue(secret, token, client, authorization)
    return issue(body.name, list(body.scopes), body.expires_in)
