"""The one place that finds a dataset by its UUID or its slug (a path's `dataset_id`, a body's
`dataset_id` or `dataset_slug`). Callers say what a miss means to them (404 for a read, 409 for a
new run or simulation naming an unknown dataset, as CONTRACT.md asks)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from psycopg import Connection

from stage1.core.refs import parse_ref
from stage1.core.where import Where

Lock = Literal["", "share", "update"]
_COLUMNS = {"id": "dataset_id", "slug": "dataset_slug"}
_LOCKS = {"": "", "share": " for share", "update": " for update"}
_SOURCES = frozenset({"stage1_datasets", "dataset_catalog"})


def find(conn: Connection[Any], ref: str | uuid.UUID, *, by: Literal["id", "slug"] | None = None,
         columns: str = "*", source: str = "stage1_datasets", lock: Lock = "") -> dict[str, Any] | None:
    """The row of the dataset `ref` names, or None. `ref` is a UUID or a slug (else a 400 from
    `parse_ref`), unless `by` says which it is. `columns` and `source` are the caller's constants;
    `lock`: "" / "share" (a concurrent delete waits for this transaction) / "update"."""
    if source not in _SOURCES:
        raise ValueError(f"not a dataset source: {source}")
    kind, value = (by, ref) if by is not None else parse_ref(ref)
    return conn.execute(
        f"select {columns} from {source} where {_COLUMNS[kind]} = %s{_LOCKS[lock]}",  # noqa: S608 - constants
        (value,),
    ).fetchone()


def filter_by(where: Where, ref: str, *, id_column: str, slug_column: str) -> Where:
    """AND "of this dataset" (a UUID or a slug) to a list's WHERE, on the list's own (joined) columns."""
    kind, value = parse_ref(ref)
    return where.add(f"{id_column if kind == 'id' else slug_column} = %(dataset)s", dataset=value)
