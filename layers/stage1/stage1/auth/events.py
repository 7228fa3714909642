"""The HttpApi Lambda authorizer's event (payload format 2.0, REQUEST type), typed: only what the
authorizer reads. Decoded once, at the handler; a payload that does not have this shape (a
non-string token or header, headers that are not an object) decodes to None and is denied."""

from __future__ import annotations

from typing import Any

import msgspec

from stage1.core.events import decode_as


class AuthorizerEvent(msgspec.Struct, frozen=True):
    version: str = "2.0"
    type: str = "REQUEST"
    routeKey: str | None = None  # noqa: N815 - API Gateway's field names
    # API Gateway fills it from the template's identity sources (none today: docs/auth.md).
    identitySource: list[str] | None = None  # noqa: N815
    # Payload 2.0 lowercases header names; repeated headers arrive comma-joined. The token is read
    # from here (x-stage1-token or authorization).
    headers: dict[str, str] | None = None


def decode_authorizer_event(event: Any) -> AuthorizerEvent | None:
    return decode_as(event, AuthorizerEvent)
