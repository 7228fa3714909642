"""One OpenAPI document for the whole service, merged from every function of template.yaml.

Each function is its own Litestar app with its own spec; clients need one. This module loads every
function that has HttpApi routes (stage1_local.template), takes each app's `openapi_schema`, keeps
the operations the template routes to it, and adds what only the deployment knows: the security
schemes (the token as X-Stage1-Token or `Authorization: Bearer`; the admin secret for token
issue), which routes are public, and the error responses every route can give (the
`{"error", "details"}` envelope: 4XX/5XX, 401/403/429, 413).

`python -m stage1_local.openapi` (`make openapi`) writes docs/openapi.json; a unit test fails when
that file is stale. The local gateway serves the live document at /api/openapi.json and Swagger UI
(bundled, no CDN) at /api/docs.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

from stage1.web.app import API_VERSION
from stage1_local.template import REPO, Function, functions, load_app

SPEC_FILE = REPO / "docs" / "openapi.json"
ERROR_SCHEMA = "ErrorBody"
ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}
ERROR_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": ERROR_SCHEMA,
    "description": "Every non-2xx response: a message and, where useful, structured details.",
    "properties": {"error": {"type": "string"}, "details": {"type": ["object", "null"]}},
    "required": ["error"],
}
SECURITY_SCHEMES = {
    "Stage1Token": {"type": "apiKey", "in": "header", "name": "X-Stage1-Token",
                    "description": "An API token (POST /api/auth/token). Scopes: read, write, admin."},
    # The same token as `Authorization: Bearer <token>` (browsers, curl, generic tools): either scheme
    # satisfies an operation (stage1.auth.credentials).
    "bearerAuth": {"type": "http", "scheme": "bearer",
                   "description": "The same API token, as `Authorization: Bearer <token>`."},
    "AdminSecret": {"type": "apiKey", "in": "header", "name": "X-Stage1-Admin-Secret",
                    "description": "The deployment's shared admin secret; accepted by POST /api/auth/token only."},
}
# Either scheme alone satisfies a protected operation (OpenAPI: alternatives in one list).
DEFAULT_SECURITY = [{"Stage1Token": []}, {"bearerAuth": []}]
DESCRIPTION = """The Stage1 data service: datasets, walk-forward runs, simulations, uploads and imports.

Every route except `/api/health`, `/api/healthz` and `POST /api/auth/token` needs an API token,
as `Authorization: Bearer <token>` or in the `X-Stage1-Token` header (both: the same token).
GET needs the `read` scope, other methods `write`, token management `admin`.
Errors are `{"error": "...", "details": {...}}`. See docs/auth.md in the repository."""


def _error_response(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}
    if retry_after:
        response["headers"] = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}
    return response


def _rewrite_refs(node: Any, renames: dict[str, str]) -> Any:
    """Point `$ref`s at renamed component schemas."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/components/schemas/"):
                name = value.rsplit("/", 1)[1]
                out[key] = f"#/components/schemas/{renames.get(name, name)}"
            else:
                out[key] = _rewrite_refs(value, renames)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, renames) for v in node]
    return node


def _operation(op: dict[str, Any], *, public: bool, has_body: bool) -> dict[str, Any]:
    op = copy.deepcopy(op)
    responses: dict[str, Any] = op.setdefault("responses", {})
    for status, response in list(responses.items()):
        # Litestar documents its own validation-error shape; the service answers with the envelope.
        # A function that documents another body for an error status (readiness' 503) keeps it.
        if status[0] in "45" and ("content" not in response or "Validation Exception" in json.dumps(response)):
            responses[status] = _error_response(response.get("description") or "Error")
    responses.setdefault("400", _error_response("Bad input (the problems are listed in `details`)"))
    if not public:
        responses.setdefault("401", _error_response("Missing, unknown, expired or revoked token"))
        responses.setdefault("403", _error_response("The token lacks the scope this route needs"))
        op.pop("security", None)  # the document's default: Stage1Token or bearerAuth
    elif "security" not in op:
        op["security"] = []
    if has_body:
        responses.setdefault("413", _error_response("Request body too large"))
    responses.setdefault("429", _error_response("Rate limited", retry_after=True))
    responses.setdefault("4XX", _error_response("Any other client error"))
    responses.setdefault("5XX", _error_response("A backing service is down (named in `details.service`)"))
    for response in responses.values():  # Litestar's header order varies between runs: keep the file stable
        if isinstance(response, dict) and isinstance(response.get("headers"), dict):
            response["headers"] = dict(sorted(response["headers"].items()))
    return op


def _sub_spec(fn: Function) -> dict[str, Any]:
    try:
        return load_app(fn).openapi_schema.to_schema()
    except Exception as exc:
        raise RuntimeError(f"{fn.name}: Litestar cannot build its OpenAPI schema: {exc!r}") from exc


def merged_spec(fns: dict[str, Function] | None = None) -> dict[str, Any]:
    fns = functions() if fns is None else fns
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {ERROR_SCHEMA: ERROR_BODY_SCHEMA}
    tags: dict[str, dict[str, Any]] = {}
    operation_ids: set[str | None] = set()
    for fn in fns.values():
        if not any(route.path.startswith("/api") for route in fn.routes):
            continue  # no API routes (the web client, functions/web, serves pages)
        sub = _sub_spec(fn)
        renames: dict[str, str] = {}
        for name, schema in (sub.get("components") or {}).get("schemas", {}).items():
            # The error envelope is one schema for every function, however Litestar spells its Struct.
            if name != ERROR_SCHEMA and name in schemas and schemas[name] != schema:
                renames[name] = f"{fn.name}{name}"  # same name, different shape: keep both
        for name, schema in (sub.get("components") or {}).get("schemas", {}).items():
            if name != ERROR_SCHEMA:
                schemas[renames.get(name, name)] = _rewrite_refs(schema, renames)
        for tag in sub.get("tags") or []:
            tags.setdefault(tag["name"], tag)
        for route in fn.routes:
            if not route.path.startswith("/api"):
                continue
            method = route.method.lower()
            op = (sub.get("paths") or {}).get(route.path, {}).get(method)
            if op is None:
                raise LookupError(f"{fn.name}: {route.method} {route.path} is in template.yaml but not in its app")
            op = _rewrite_refs(op, renames)
            if op.get("operationId") in operation_ids:  # unique across functions, as OpenAPI requires
                op["operationId"] = f"{fn.name}{op['operationId']}"
            operation_ids.add(op.get("operationId"))
            paths.setdefault(route.path, {})[method] = _operation(
                op, public=not route.authorizer, has_body="requestBody" in op)
    spec: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "Stage1 data service", "version": API_VERSION, "description": DESCRIPTION},
        "servers": [{"url": "/"}],
        "security": copy.deepcopy(DEFAULT_SECURITY),
        "paths": {path: dict(sorted(ops.items())) for path, ops in sorted(paths.items())},
        "components": {"schemas": dict(sorted(schemas.items())), "securitySchemes": SECURITY_SCHEMES},
    }
    if tags:
        spec["tags"] = [tags[name] for name in sorted(tags)]
    return spec


DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Stage1 API</title>
<link rel="stylesheet" href="/api/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/api/docs/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({url: "/api/openapi.json", dom_id: "#swagger-ui", persistAuthorization: true,
                             deepLinking: true, tryItOutEnabled: false});
</script></body></html>
"""
DOCS_ASSETS = {"swagger-ui.css": b"text/css", "swagger-ui-bundle.js": b"text/javascript"}


async def _respond(send: Any, status: int, body: bytes, content_type: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
                            (b"cache-control", b"no-cache")]})
    await send({"type": "http.response.body", "body": body})


def install(gateway: Any) -> None:
    """Serve the live merged spec at /api/openapi.json and Swagger UI at /api/docs. Swagger UI comes
    from the `swagger-ui-bundle-v2` package (a dev dependency): the page loads nothing from the
    network. These are local routes: on AWS the spec is the committed docs/openapi.json."""
    cache: dict[str, bytes] = {}

    async def spec(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if "spec" not in cache:
            cache["spec"] = render(merged_spec()).encode()
        await _respond(send, 200, cache["spec"], b"application/json")

    async def docs(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await _respond(send, 200, DOCS_HTML.encode(), b"text/html; charset=utf-8")

    def asset(name: str, content_type: bytes) -> Any:
        async def serve(scope: dict[str, Any], receive: Any, send: Any) -> None:
            try:
                from swagger_ui_bundle import swagger_ui_path
            except ImportError:
                await _respond(send, 404, b"swagger-ui-bundle-v2 is not installed", b"text/plain")
                return
            if name not in cache:
                cache[name] = (Path(str(swagger_ui_path)) / name).read_bytes()
            await _respond(send, 200, cache[name], content_type)
        return serve

    gateway.local_routes["/api/openapi.json"] = spec
    gateway.local_routes["/api/docs"] = docs
    for name, content_type in DOCS_ASSETS.items():
        gateway.local_routes[f"/api/docs/{name}"] = asset(name, content_type)


def render(spec: dict[str, Any]) -> str:
    return json.dumps(spec, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the merged OpenAPI spec of every function in template.yaml")
    parser.add_argument("--output", type=Path, default=SPEC_FILE)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs from the generated spec")
    args = parser.parse_args(argv)
    text = render(merged_spec())
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: run `make openapi`", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    spec = json.loads(text)
    ops = sum(len(v) for v in spec["paths"].values())
    print(f"wrote {args.output} ({len(spec['paths'])} paths, {ops} operations)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
