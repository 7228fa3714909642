"""Paging rules shared by every list and row read (the bounds the web layer's parameters enforce)."""

from __future__ import annotations

MAX_PAGE = 1000
# JSON pages of rows are bounded twice: by rows (the `limit` parameter's maximum) and by cells, so
# a wide indicator table cannot produce a response above Lambda's 6 MB synchronous limit.
ROW_PAGE_MAX = 10_000
CELL_BUDGET = 200_000


def page_limit(limit: int, columns: int) -> int:
    return max(1, min(limit, CELL_BUDGET // max(1, columns)))


def next_offset(offset: int, returned: int, total: int) -> int | None:
    nxt = offset + returned
    return nxt if returned and nxt < total else None


def like_pattern(text: str) -> str:
    """`%text%` for ILIKE with the user's own `%`, `_` and `\\` escaped."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def sort_orders(alias: str, columns: tuple[str, ...], *, nulls_last: frozenset[str] = frozenset()) -> dict[str, str]:
    """The ORDER BY text of each `sort` value a list accepts: `col` ascending, `-col` descending, on
    the service's own column names (constants; the `sort` parameter's Literal type bounds the choice).
    Nullable times sort their nulls last both ways."""
    orders: dict[str, str] = {}
    for column in columns:
        tail = " nulls last" if column in nulls_last else ""
        orders[column] = f"{alias}{column} asc{tail}"
        orders[f"-{column}"] = f"{alias}{column} desc{tail}"
    return orders
