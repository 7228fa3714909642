"""What API Gateway does in front of the functions, locally: the Lambda authorizer, scope checks,
CORS and throttling, read from template.yaml where the template says it (docs/auth.md).

- Body size: a Content-Length above `max_body_bytes` is refused (413) before routing, as API
  Gateway refuses payloads above its limit.
- Authorizer: on every route whose template event does not say `Auth: {Authorizer: NONE}`, the
  HttpApi's DefaultAuthorizer function (the same handler as on AWS) is called with a payload-2.0
  authorizer event. As on AWS, a request lacking one of the authorizer's identity sources (the
  template lists none, so that `X-Stage1-Token` and `Authorization: Bearer` both work) is a 401
  without calling it; the authorizer reads the token from either header
  (`stage1.auth.credentials`, the one parser). A deny: 401. A token without the scope the request needs
  (stage1.auth.scopes): 403. Its context is passed to the function the way API Gateway passes it,
  in `scope["aws.event"]["requestContext"]["authorizer"]["lambda"]`. `STAGE1_AUTH_ENABLED=false`
  turns this guard off (local experiments only; the Lambda authorizer ignores that setting).
- Rate limits: a token bucket per token (`rate_limit_rps`, `rate_limit_burst`), one per client
  address for public routes, and one per client address for failed authentications: 429 with
  Retry-After.
- CORS: the HttpApi's CorsConfiguration, with AllowOrigins from `STAGE1_CORS_ALLOW_ORIGINS` (the
  template's CorsAllowOrigins parameter). Preflights are answered before routing and auth; the
  functions' own CORS headers are dropped, as API Gateway drops them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from stage1.auth.credentials import MISSING_TOKEN
from stage1.auth.ratelimit import RateLimiter
from stage1.auth.scopes import check_scope
from stage1.core.errors import PayloadTooLarge, Stage1Error, TooManyRequests, Unauthorized, to_stage1_error
from stage1.core.logging import get_logger
from stage1.core.settings import Settings, get_settings
from stage1_local.template import Route, functions, load_handler, load_template

log = get_logger("gateway.security")
ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def header(scope: dict[str, Any], name: bytes) -> str | None:
    """A header's value; repeated headers comma-joined, as API Gateway (payload 2.0) joins them, so
    two tokens are one malformed token, never the first of them."""
    values = [value.decode("latin-1") for key, value in scope.get("headers") or [] if key.lower() == name]
    return ",".join(values) if values else None


def client_address(scope: dict[str, Any]) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def http_api(template: dict[str, Any]) -> dict[str, Any]:
    """Properties of the template's (single) AWS::Serverless::HttpApi."""
    for resource in (template.get("Resources") or {}).values():
        if resource.get("Type") == "AWS::Serverless::HttpApi":
            return resource.get("Properties") or {}
    return {}


def resolve(value: Any, template: dict[str, Any], settings: Settings) -> Any:
    """A template value as CloudFormation would resolve it with the local settings as parameters:
    `!Ref CorsAllowOrigins` is STAGE1_CORS_ALLOW_ORIGINS, another `!Ref` the parameter's default;
    `!Split`, `!If` (with `!Not`/`!Equals` conditions) and `AWS::NoValue` (None) are evaluated."""
    if isinstance(value, list):
        return [resolve(v, template, settings) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        name = value["Ref"]
        if name == "AWS::NoValue":
            return None
        if name == "CorsAllowOrigins":
            return settings.auth.cors_allow_origins.replace(" ", "")
        param = (template.get("Parameters") or {}).get(name) or {}
        default = param.get("Default")
        if param.get("Type") == "CommaDelimitedList" and isinstance(default, str):
            return [v.strip() for v in default.split(",") if v.strip()]
        return default
    if set(value) == {"Fn::Split"}:
        delimiter, source = value["Fn::Split"]
        return [v for v in str(resolve(source, template, settings)).split(delimiter) if v]
    if set(value) == {"Fn::If"}:
        condition, if_true, if_false = value["Fn::If"]
        chosen = if_true if _condition(condition, template, settings) else if_false
        return resolve(chosen, template, settings)
    return {k: resolve(v, template, settings) for k, v in value.items()}


def _condition(name: str, template: dict[str, Any], settings: Settings) -> bool:
    def evaluate(node: Any) -> Any:
        if isinstance(node, dict) and set(node) == {"Fn::Not"}:
            return not evaluate(node["Fn::Not"][0])
        if isinstance(node, dict) and set(node) == {"Fn::Equals"}:
            left, right = node["Fn::Equals"]
            return evaluate(left) == evaluate(right)
        if isinstance(node, dict) and set(node) == {"Condition"}:
            return _condition(node["Condition"], template, settings)
        return resolve(node, template, settings)

    return bool(evaluate((template.get("Conditions") or {})[name]))


# ---------------------------------------------------------------- authorizer
def _default_authorizer(template: dict[str, Any]) -> dict[str, Any]:
    auth = http_api(template).get("Auth") or {}
    name = auth.get("DefaultAuthorizer")
    return ((auth.get("Authorizers") or {}).get(name) or {}) if name else {}


def authorizer_handler(template: dict[str, Any]) -> Callable[[dict[str, Any], Any], dict[str, Any]] | None:
    """The handler of the HttpApi's DefaultAuthorizer function, loaded as the Lambda runtime would."""
    arn = _default_authorizer(template).get("FunctionArn")
    if not isinstance(arn, dict) or "Fn::GetAtt" not in arn:
        return None
    return load_handler(functions()[arn["Fn::GetAtt"][0]])


def identity_headers(template: dict[str, Any]) -> tuple[bytes, ...]:
    """The DefaultAuthorizer's identity-source headers (`Identity.Headers`), as ASGI names. API
    Gateway refuses a request without every one of them (401, the authorizer is not called)."""
    identity = _default_authorizer(template).get("Identity") or {}
    return tuple(str(h).lower().encode() for h in identity.get("Headers") or [])


def authorizer_event(scope: dict[str, Any], route: Route, identity: list[str] | None) -> dict[str, Any]:
    """A payload-2.0 REQUEST authorizer event, as API Gateway sends it (`identitySource`: the values
    of the identity sources, None when the authorizer lists none)."""
    method, path = scope["method"], scope["path"]
    headers: dict[str, str] = {}
    for key, value in scope.get("headers") or []:
        name = key.decode("latin-1").lower()
        headers[name] = f"{headers[name]},{value.decode('latin-1')}" if name in headers else value.decode("latin-1")
    request_id = uuid.uuid4().hex
    return {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": f"arn:aws:execute-api:local:000000000000:local/$default/{method}{path}",
        "identitySource": identity,
        "routeKey": f"{route.method} {route.path}",
        "rawPath": path,
        "rawQueryString": scope.get("query_string", b"").decode("latin-1"),
        "headers": headers,
        "requestContext": {
            "apiId": "local", "accountId": "000000000000", "domainName": "localhost", "stage": "$default",
            "requestId": request_id, "routeKey": f"{route.method} {route.path}",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": client_address(scope),
                     "userAgent": headers.get("user-agent", "")},
        },
    }


@dataclass
class Security:
    settings: Settings
    template: dict[str, Any]
    limiter: RateLimiter
    authorize: Callable[[dict[str, Any], Any], dict[str, Any]] | None
    identity: tuple[bytes, ...] = ()

    # -- guards (stage1_local.gateway.Guard): an error stops the request, None lets it through
    async def body_size(self, scope: dict[str, Any], route: Route | None) -> Stage1Error | None:
        length = header(scope, b"content-length")
        # isascii: str.isdigit() also accepts "²", which int() refuses.
        if length and length.isascii() and length.isdigit() and int(length) > self.settings.service.max_body_bytes:
            return PayloadTooLarge("request body too large",
                                   {"max_bytes": self.settings.service.max_body_bytes, "content_length": int(length)})
        return None

    async def authorizer(self, scope: dict[str, Any], route: Route | None) -> Stage1Error | None:
        if route is None or not route.authorizer or not self.settings.auth.auth_enabled or self.authorize is None:
            return None
        values = [header(scope, name) for name in self.identity]
        if not all(values):
            return self._failed(scope, MISSING_TOKEN)
        event = authorizer_event(scope, route, [v for v in values if v] if self.identity else None)
        try:
            answer = await asyncio.to_thread(self.authorize, event, None)
        except Exception as exc:  # the authorizer failed (database down): API Gateway would answer 500
            return to_stage1_error(exc)
        context = answer.get("context") or {}
        if not answer.get("isAuthorized"):
            return self._failed(scope, str(context.get("reason") or "invalid token"))
        if (error := check_scope(scope["method"], scope["path"], context)) is not None:
            return error
        event = scope.setdefault("aws.event", {})
        event.setdefault("requestContext", {})["authorizer"] = {"lambda": context}
        return None

    def _failed(self, scope: dict[str, Any], reason: str) -> Stage1Error:
        """401, or 429 once this address has failed too often: failures have their own bucket per
        address, so neither public traffic nor someone else's bad tokens slow down a valid token."""
        if (wait := self.limiter.hit(f"authfail:{client_address(scope)}")) > 0:
            return TooManyRequests("rate limited: too many failed authentications", wait)
        return Unauthorized(reason)

    async def rate_limit(self, scope: dict[str, Any], route: Route | None) -> Stage1Error | None:
        context = (((scope.get("aws.event") or {}).get("requestContext") or {}).get("authorizer") or {}).get("lambda")
        token_id = context.get("token_id") if isinstance(context, dict) else None
        key = f"token:{token_id}" if token_id else f"ip:{client_address(scope)}"
        if (wait := self.limiter.hit(key)) > 0:
            return TooManyRequests("rate limited", wait, {"limit_per_second": self.settings.auth.rate_limit_rps,
                                                          "burst": self.settings.auth.rate_limit_burst})
        return None

    # -- CORS, as an ASGI middleware around the whole gateway
    def cors(self, app: ASGIApp) -> ASGIApp:
        config = resolve(http_api(self.template).get("CorsConfiguration"), self.template, self.settings) or {}
        if not config:
            return app  # no CORS: browsers get no Access-Control-* headers (as on AWS)
        origins = set(config.get("AllowOrigins") or [])
        methods = ",".join(config.get("AllowMethods") or [])
        allow_headers = ",".join(config.get("AllowHeaders") or []).lower()
        expose = ",".join(config.get("ExposeHeaders") or []).lower()
        max_age = str(config.get("MaxAge", 0))
        credentials = bool(config.get("AllowCredentials", False))

        def allowed(origin: str | None) -> str | None:
            if origin is None:
                return None
            if origin in origins:
                return origin
            return "*" if "*" in origins else None

        async def middleware(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            origin = header(scope, b"origin")
            allow = allowed(origin)
            if scope["method"] == "OPTIONS" and origin and header(scope, b"access-control-request-method"):
                headers = [(b"content-length", b"0")]
                if allow:
                    headers += [(b"access-control-allow-origin", allow.encode()),
                                (b"access-control-allow-methods", methods.encode()),
                                (b"access-control-allow-headers", allow_headers.encode()),
                                (b"access-control-max-age", max_age.encode()), (b"vary", b"origin")]
                    if credentials:
                        headers.append((b"access-control-allow-credentials", b"true"))
                await send({"type": "http.response.start", "status": 204, "headers": headers})
                await send({"type": "http.response.body", "body": b""})
                return

            async def send_with_cors(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    headers = [(k, v) for k, v in message.get("headers", [])
                               if not k.lower().startswith(b"access-control-")]
                    if allow:
                        headers += [(b"access-control-allow-origin", allow.encode()), (b"vary", b"origin")]
                        if expose:
                            headers.append((b"access-control-expose-headers", expose.encode()))
                        if credentials:
                            headers.append((b"access-control-allow-credentials", b"true"))
                    message = {**message, "headers": headers}
                await send(message)

            await app(scope, receive, send_with_cors)

        return middleware


# Headers a client may legitimately repeat and API Gateway does not join the same way.
_UNJOINED = frozenset({b"cookie", b"set-cookie"})


def join_repeated_headers(app: ASGIApp) -> ASGIApp:
    """API Gateway (payload 2.0) hands a function one comma-joined value per header name, so a
    repeated credential header (two tokens, two admin secrets) is one malformed value there. Locally
    the functions would see the first of them: join them here too, before guards and functions."""

    async def middleware(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raw = scope.get("headers") or []
        names = [key.lower() for key, _ in raw]
        if scope["type"] == "http" and len(set(names)) != len(names):
            joined: dict[bytes, list[bytes]] = {}
            kept: list[tuple[bytes, bytes]] = []
            for (key, value), name in zip(raw, names, strict=True):
                if name in _UNJOINED:
                    kept.append((key, value))
                else:
                    joined.setdefault(name, []).append(value)
            scope = {**scope, "headers": [*((k, b",".join(v)) for k, v in joined.items()), *kept]}
        await app(scope, receive, send)

    return middleware


def install(gateway: Any, settings: Settings | None = None) -> Security:
    """Register the guards (body size, authorizer, rate limit) and the CORS middleware."""
    settings = settings or get_settings()
    template = load_template()
    handler = authorizer_handler(template)
    if handler is None:
        log.warning("template.yaml has no HttpApi DefaultAuthorizer: every route is public")
    if not settings.auth.auth_enabled:
        log.warning("STAGE1_AUTH_ENABLED=false: the gateway does not check tokens")
    limiter = RateLimiter(settings.auth.rate_limit_rps, settings.auth.rate_limit_burst)
    security = Security(settings, template, limiter, handler, identity_headers(template))
    gateway.guards += [security.body_size, security.authorizer, security.rate_limit]
    gateway.middleware += [join_repeated_headers, security.cors]
    return security
