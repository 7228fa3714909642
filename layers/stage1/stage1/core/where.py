"""A WHERE clause built from optional filters, with bind parameters only (never a value in the text).

The list services (datasets, runs, simulations) filter by whatever the query gave:

    where = Where().eq("r.status", "status", status).add("r.x ilike %(pattern)s", pattern=...)
    conn.execute(sql.SQL("select ... from t" + where.sql()), where.params)

Conditions are the services' own constant text; values only ever travel in `params`."""

from __future__ import annotations

from typing import Any

_OPS = frozenset({"=", "<>", "<", "<=", ">", ">="})


class Where:
    __slots__ = ("conditions", "params")

    def __init__(self, **params: Any) -> None:
        self.conditions: list[str] = []
        self.params: dict[str, Any] = dict(params)

    def add(self, condition: str, **params: Any) -> Where:
        """AND one condition that names its bind parameters as `%(name)s`."""
        self.conditions.append(condition)
        self.params.update(params)
        return self

    def eq(self, column: str, name: str, value: Any) -> Where:
        """`column = %(name)s` when the filter was given (None: no condition)."""
        return self.compare(column, "=", name, value)

    def compare(self, column: str, op: str, name: str, value: Any) -> Where:
        """`column <op> %(name)s` (op one of = <> < <= > >=) when the filter was given (None: none)."""
        if op not in _OPS:
            raise ValueError(f"not a comparison: {op}")
        return self if value is None else self.add(f"{column} {op} %({name})s", **{name: value})

    def sql(self) -> str:
        """` where a and b`, or "" without conditions."""
        return " where " + " and ".join(self.conditions) if self.conditions else ""
