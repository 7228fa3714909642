"""The base Struct for every request and response body."""

from __future__ import annotations

import msgspec


class Model(msgspec.Struct, kw_only=True):
    """Base of all edge types. Unknown fields in request bodies are ignored (msgspec's default),
    so an older server accepts a newer client's payload; see docs/DEVELOPING.md.

    msgspec applies `kw_only` per class: subclasses that mix optional and required fields
    pass `kw_only=True` again."""


class Page(Model):
    """Paging envelope fields shared by list responses."""

    total: int
    limit: int
    offset: int
