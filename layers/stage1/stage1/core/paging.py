"""Query-parameter types shared by every list endpoint. The bounds live in the types, so a bad
value is a 400 from the framework before a handler runs."""

from __future__ import annotations

from typing import Annotated

from litestar.params import Parameter

MAX_PAGE = 1000

Limit = Annotated[int, Parameter(ge=1, le=MAX_PAGE, description=f"Page size, 1-{MAX_PAGE}")]
Offset = Annotated[int, Parameter(ge=0, le=100_000_000, description="Items to skip")]
# Free-text filters are bounded too: they end up in an ILIKE pattern (as a bind parameter).
Search = Annotated[str | None, Parameter(max_length=200, description="Case-insensitive substring match")]


def like_pattern(text: str) -> str:
    """`%text%` for ILIKE with the user's own `%`, `_` and `\\` escaped."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
