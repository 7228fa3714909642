"""`sort=` on any filterable field and the opaque `cursor` that pages stably under it (keyset paging).

A sort is a list of terms (SQL expression, direction, kind) ending with the list's id ascending, so
the order is total even with ties. The cursor carries the last row's term values and id, the sort
and a digest of the filter; it is validated on the way back in (shape, types, same sort and filter),
and its values go back as typed bind parameters, so a forged cursor can only page wrongly, never
reach SQL text or fail a cast.

Sorts a list already had keep their ORDER BY text exactly (`legacy`); a JSON key sorts numbers
first (numerically), then strings, then rows without the key; missing values are last both ways.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from stage1.core.errors import BadRequest
from stage1.core.filters import Binds, Fields, Kind, aggregate_of, numeric_of, parse_filter, resolve, text_of
from stage1.core.refs import as_uuid

MAX_SORT_CHARS = 200
MAX_CURSOR_CHARS = 4096
_CASTS: dict[str, str] = {"number": "::numeric", "time": "::timestamptz", "text": "::text", "uuid": "::uuid"}


@dataclass(frozen=True)
class Term:
    sql: str
    desc: bool
    kind: Kind
    nullable: bool


@dataclass
class Ranking:
    sort: str
    terms: list[Term]
    id_column: str
    order_by: str  # the ORDER BY text (terms, then the id)

    def select(self) -> str:
        """The term values as extra columns `_k0, _k1, ...` (for the next cursor)."""
        return "".join(f", {t.sql} as _k{i}" for i, t in enumerate(self.terms))


def ranking(fields: Fields, sort: str, binds: Binds, legacy: dict[str, str]) -> Ranking:
    """The ORDER BY of `sort` (`[-]field`); a legacy value keeps its exact text from before."""
    if len(sort) > MAX_SORT_CHARS:
        raise BadRequest(f"bad sort: longer than {MAX_SORT_CHARS} characters", {"parameter": "sort"})
    desc = sort.startswith("-")
    name = sort[1:] if desc else sort
    direction = " desc" if desc else " asc"
    target = resolve(fields, name, 1 if desc else 0, "sort")
    if target.column is not None:
        col = target.column
        terms = [Term(col.sql, desc, col.kind, col.nullable)]
    else:
        key = binds(target.key, "::text")
        if target.aggregate is not None:
            terms = [Term(aggregate_of(fields, target.aggregate, key), desc, "number", True)]
        else:
            assert target.document is not None
            terms = [Term(numeric_of(target.document, key), desc, "number", True),
                     Term(text_of(target.document, key), desc, "text", True)]
    if sort in legacy:
        order = legacy[sort]
    else:
        order = ", ".join(t.sql + direction + (" nulls last" if t.nullable else "") for t in terms)
    return Ranking(sort, terms, fields.id_column, f"{order}, {fields.id_column}")


# ---------------------------------------------------------------------------------------- cursor
def _digest(sort: str, filter_text: str | None) -> str:
    return hashlib.sha256(f"{sort}\n{filter_text or ''}".encode()).hexdigest()[:16]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (Decimal, uuid.UUID)):
        return str(value)
    return value


def encode_cursor(rank: Ranking, filter_text: str | None, row: dict[str, Any], row_id: Any) -> str:
    body = {"s": _digest(rank.sort, filter_text), "v": [_plain(row[f"_k{i}"]) for i in range(len(rank.terms))],
            "id": str(row_id)}
    return base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).decode().rstrip("=")


def _bad_cursor(why: str) -> BadRequest:
    return BadRequest(f"bad cursor: {why}", {"parameter": "cursor"})


def _typed(kind: Kind, value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str) and not (kind == "number" and isinstance(value, int)):
        raise _bad_cursor("a value of the wrong type")
    try:
        if kind == "number":
            number = Decimal(str(value))
            if not number.is_finite():
                raise _bad_cursor("not a finite number")
            return number
        if kind == "time":
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                raise _bad_cursor("a time without its zone")
            return parsed
        if kind == "uuid":
            found = as_uuid(value)
            if found is None:
                raise _bad_cursor("not a uuid")
            return found
    except (ValueError, InvalidOperation):
        raise _bad_cursor(f"not a {kind}") from None
    return value


def after_cursor(rank: Ranking, filter_text: str | None, cursor: str, binds: Binds) -> str:
    """The condition 'comes after the cursor's row' in the ranking's order (nulls last)."""
    if len(cursor) > MAX_CURSOR_CHARS:
        raise _bad_cursor("too long")
    try:
        body = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        raise _bad_cursor("not a cursor this API returned") from None
    if not isinstance(body, dict) or not isinstance(body.get("v"), list) or len(body["v"]) != len(rank.terms):
        raise _bad_cursor("not a cursor this API returned")
    if body.get("s") != _digest(rank.sort, filter_text):
        raise _bad_cursor("it belongs to another sort or filter (pass the same sort and filter)")
    last_id = as_uuid(body.get("id"))
    if last_id is None:
        raise _bad_cursor("not a cursor this API returned")
    values = [_typed(t.kind, v) for t, v in zip(rank.terms, body["v"], strict=True)]
    # Lexicographic "after": for each term i, equal on the terms before it and strictly after on it;
    # finally equal on all and a greater id. With nulls last, after a NULL comes only NULL.
    branches, equal = [], []
    for term, value in zip(rank.terms, values, strict=True):
        if value is None:
            equal.append(f"{term.sql} is null")
            continue
        bound = binds(value, _CASTS[term.kind])
        later = f"{term.sql} {'<' if term.desc else '>'} {bound}"
        if term.nullable:
            later = f"({later} or {term.sql} is null)"
        branches.append(" and ".join([*equal, later]))
        equal.append(f"{term.sql} = {bound}")
    branches.append(" and ".join([*equal, f"{rank.id_column} > {binds(last_id, '::uuid')}"]))
    return "(" + " or ".join(f"({b})" for b in branches) + ")"


# ------------------------------------------------------------------------------ one list's search
@dataclass
class Search:
    """A list query's filter, ranking and cursor, added to its `Where` (`stage1.core.where`)."""

    rank: Ranking
    filter_text: str | None
    count_clause: str  # the WHERE of the total (the filter, not the cursor)
    page_clause: str  # the WHERE of the page (the filter and the cursor)

    def next_cursor(self, rows: list[dict[str, Any]], limit: int, id_key: str, *, cut: bool = False) -> str | None:
        """A cursor after the last row of a full page that has more rows behind it (the service
        fetched `limit + 1`), else None. `cut`: the page ended early at its byte cap (`db.fetch_within`),
        so more rows follow its last one."""
        if cut and rows:
            return encode_cursor(self.rank, self.filter_text, rows[-1], rows[-1][id_key])
        if len(rows) <= limit:
            return None
        last = rows[limit - 1]
        return encode_cursor(self.rank, self.filter_text, last, last[id_key])


def prepare(fields: Fields, where: Any, *, filter_text: str | None, sort: str, cursor: str | None,
            legacy: dict[str, str], offset: int) -> Search:
    if cursor is not None and offset:
        raise BadRequest("cursor and offset are two ways of paging: pass one", {"parameter": "cursor"})
    binds = Binds()
    if filter_text is not None and filter_text.strip():
        where.add(parse_filter(fields, filter_text, binds))
    rank = ranking(fields, sort, binds, legacy)
    where.params.update(binds.params)
    count_clause = where.sql()
    if cursor is not None:
        after = Binds("cur")
        where.add(after_cursor(rank, filter_text, cursor, after), **after.params)
    return Search(rank, filter_text, count_clause, where.sql())
