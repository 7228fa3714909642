"""Deprecated alias routes: the older backend's read paths (Stage 1.3's `/api/indicators`,
`/api/walkforward`, `/api/tradesim`), answered by the same services as their successors.

Every answer says so in headers: `Deprecation: true` and `Link: <successor>; rel="successor-version"`
(RFC 9745 / RFC 8288); the operation is `deprecated: true` in the OpenAPI spec. The older backend's
lists were bare JSON arrays, so an alias list answers the successor's items as an array and moves
the paging fields to headers (`X-Total-Count`, and `Link: <next page>; rel="next"` while more remain).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from litestar import Response
from litestar.datastructures import ResponseHeader
from litestar.openapi.datastructures import ResponseSpec

from stage1.core.errors import ErrorBody

DEPRECATED_HEADERS = [
    ResponseHeader(name="Deprecation", value="true", description="This path is deprecated (RFC 9745)."),
    ResponseHeader(name="Link", documentation_only=True,
                   description='The successor: `</api/...>; rel="successor-version"` (and `rel="next"` on lists '
                               "while more items remain)."),
]
LIST_HEADERS = [ResponseHeader(name="X-Total-Count", documentation_only=True,
                               description="Items in the whole list (the successor's `total`).")]


def alias_route(tag: str, *, listing: bool = False) -> dict[str, Any]:
    """Keyword arguments of an alias's route decorator (blocking handler, spec markings)."""
    responses = {} if listing else {404: ResponseSpec(ErrorBody, description="Not found (as the successor)",
                                                      generate_examples=False)}
    return {"sync_to_thread": True, "tags": [tag, "deprecated"], "deprecated": True, "responses": responses,
            "response_headers": DEPRECATED_HEADERS + (LIST_HEADERS if listing else [])}


def deprecated(content: Any, successor: str) -> Response[Any]:
    """A detail alias's answer: the successor's payload with the deprecation headers."""
    return Response(content, headers={"Deprecation": "true", "Link": f'<{successor}>; rel="successor-version"'})


def deprecated_list(items: list[Any], page: Any, successor: str, path: str) -> Response[Any]:
    """A list alias's answer: the page's items as a bare array; `total` and the next page in headers."""
    links = [f'<{successor}>; rel="successor-version"']
    after = page.offset + len(items)
    if items and after < page.total:
        links.append(f'<{path}?{urlencode({"limit": page.limit, "offset": after})}>; rel="next"')
    return Response(items, headers={"Deprecation": "true", "Link": ", ".join(links),
                                    "X-Total-Count": str(page.total)})
