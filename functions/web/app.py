"""The web endpoint group: serves the built single-page app (functions/web/ui, built into dist/).

Public (template.yaml: `GET /` and `GET /{proxy+}` with no authorizer); the app's own API calls carry
the token. Only files listed in the build's manifest (`dist/stage1-manifest.json`, written by
ui/scripts/budget.mjs) are ever read, so no request path reaches the file system: path traversal has
nothing to open. Hashed assets are cached for a year, index.html never; any other non-/api path that is
not an asset answers index.html (the SPA's router decides). See docs/web.md.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from litestar import Litestar, Response, get
from litestar.params import PathParameter

from stage1.core.errors import NotFound, ServiceUnavailable
from stage1.core.settings import get_settings
from stage1.web.app import make_handler, request_id_middleware
from stage1.web.errors import handle_exception

DIST = Path(__file__).resolve().parent / "dist"
MANIFEST = "stage1-manifest.json"
INDEX = "index.html"
IMMUTABLE = "public, max-age=31536000, immutable"
TYPES = {
    ".html": "text/html", ".js": "text/javascript", ".css": "text/css",
    ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon", ".json": "application/json",
    ".woff2": "font/woff2", ".txt": "text/plain", ".map": "application/json",
}


def bucket_origins() -> list[str]:
    """Where the browser sends presigned uploads: the S3 endpoint's origin (path-style, MinIO locally),
    or the bucket's AWS virtual-host origins."""
    store = get_settings().store
    if store.s3_endpoint:
        parts = urlsplit(store.s3_endpoint)
        return [f"{parts.scheme}://{parts.netloc}"]
    return [f"https://{store.bucket}.s3.{store.s3_region}.amazonaws.com", f"https://{store.bucket}.s3.amazonaws.com"]


def security_headers() -> dict[str, str]:
    csp = "; ".join([
        "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
        "connect-src " + " ".join(["'self'", *bucket_origins()]),
        "frame-ancestors 'none'", "base-uri 'none'", "object-src 'none'", "form-action 'self'",
    ])
    return {"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def manifest(dist: Path | None = None) -> frozenset[str]:
    """The build's file list (relative posix paths), re-read when the build changes (a local `make web`
    under a running gateway; on Lambda the package never changes). Missing: the app is not built."""
    dist = dist or DIST
    try:
        return _files(dist, (dist / MANIFEST).stat().st_mtime_ns)
    except (OSError, ValueError, KeyError) as exc:
        raise ServiceUnavailable("the web app is not built (run `make web`)", {"service": "web"}) from exc


@cache
def _files(dist: Path, _mtime_ns: int) -> frozenset[str]:
    files = json.loads((dist / MANIFEST).read_text())["files"]
    return frozenset(str(f) for f in files if isinstance(f, str))


def _file(name: str, cache_control: str, status: int = 200) -> Response[bytes]:
    body = (DIST / name).read_bytes()
    media = TYPES.get(Path(name).suffix, "application/octet-stream")
    return Response(body, status_code=status, media_type=media,
                    headers={"Cache-Control": cache_control, **security_headers()})


def serve(path: str) -> Response[bytes]:
    path = path.lstrip("/")
    if path == "api" or path.startswith("api/"):
        raise NotFound("no such route", {"path": "/" + path})
    files = manifest()
    if path in files and path != MANIFEST:
        if path == INDEX:
            return _file(INDEX, "no-cache")
        return _file(path, IMMUTABLE if path.startswith("assets/") else "public, max-age=3600")
    if path.startswith("assets/") or "." in path.rsplit("/", 1)[-1]:
        raise NotFound("no such file", {"path": "/" + path})
    return _file(INDEX, "no-cache")  # a client-side route


@get("/", include_in_schema=False, sync_to_thread=False)
def index() -> Response[bytes]:
    return serve("")


@get("/{proxy:path}", include_in_schema=False, sync_to_thread=False)
def anything(proxy: Annotated[str, PathParameter()]) -> Response[bytes]:
    """The template's greedy `/{proxy+}`: every other path (the API's routes match first)."""
    return serve(proxy)


def _app(route_handlers: list[Any]) -> Litestar:
    # Not stage1.web.app.create_app: that one mounts an OpenAPI schema and the API's scope guard.
    return Litestar(route_handlers=route_handlers, exception_handlers={Exception: handle_exception},
                    middleware=[request_id_middleware], openapi_config=None, debug=False)


app = _app([index, anything])
handler = make_handler(app)
