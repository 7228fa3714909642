"""Auth function: token issue (admin secret or an admin token), listing and revocation (admin).

`POST /api/auth/token` has no authorizer in template.yaml (it is how the first token is made), so
this function checks its credentials itself (`stage1.auth.issue`): the `X-Stage1-Admin-Secret`
header, or else an admin-scoped token (`Authorization: Bearer` or `X-Stage1-Token`). Listing and
revocation sit behind the authorizer like every other route and need the `admin` scope.
"""

from typing import Annotated, Any

from litestar import Request, delete, get, post
from litestar.params import JSONBody, Parameter

from stage1.auth.credentials import AUTHORIZATION_HEADER
from stage1.auth.issue import issue_token as issue
from stage1.auth.schemas import TokenCreate, TokenInfo, TokenIssued, TokenList
from stage1.auth.tokens import list_tokens, revoke
from stage1.web.app import create_app, make_handler
from stage1.web.params import Limit, Offset
from stage1_wire.auth import TOKEN_HEADER

ADMIN_SECRET_HEADER = "x-stage1-admin-secret"  # noqa: S105 - a header name


def client_address(request: Request[Any, Any, Any]) -> str:
    """The caller's address: API Gateway's `sourceIp` on AWS, the socket peer locally."""
    event = request.scope.get("aws.event") or {}  # type: ignore[attr-defined]
    source = ((event.get("requestContext") or {}).get("http") or {}).get("sourceIp")
    return str(source or (request.client.host if request.client else "unknown"))


@post("/api/auth/token", summary="Issue a token (returned once)", tags=["auth"], status_code=201,
      sync_to_thread=True, security=[{"AdminSecret": []}, {"Stage1Token": []}, {"bearerAuth": []}])
def issue_token(request: Request[Any, Any, Any], data: JSONBody[TokenCreate]) -> TokenIssued:
    return issue(data, secret=request.headers.get(ADMIN_SECRET_HEADER), token=request.headers.get(TOKEN_HEADER),
                 authorization=request.headers.get(AUTHORIZATION_HEADER), client=client_address(request))


@get("/api/auth/tokens", summary="List tokens (admin)", tags=["auth"], sync_to_thread=True)
def get_tokens(
    limit: Limit = 100,
    offset: Offset = 0,
    include_inactive: Annotated[bool, Parameter(description="Also list revoked and expired tokens")] = False,
) -> TokenList:
    return list_tokens(limit=limit, offset=offset, include_inactive=include_inactive)


@delete("/api/auth/tokens/{token_id:str}", summary="Revoke a token (admin)", tags=["auth"], status_code=200,
        sync_to_thread=True)
def revoke_token(token_id: Annotated[str, Parameter(max_length=64, description="The token's UUID")]) -> TokenInfo:
    return revoke(token_id)


app = create_app([issue_token, get_tokens, revoke_token], title="Stage1 auth")
handler = make_handler(app)
