"""InfluxDB line protocol (ILP) encoding for QuestDB's `/write` HTTP endpoint.

Why not the `questdb` client here: its wheels are manylinux_2_28 only, which the python3.11 Lambda
runtime (glibc 2.26) cannot load, and it pulls numpy into every API function. The API functions
write small, bounded batches (request bodies are capped at 10 MB), for which encoding lines in
Python is fast enough; bulk imports use the client's DataFrame path in the importer image.

One POST is one QuestDB transaction per table (ILP over HTTP), so a batch lands whole or not at all.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

Value = float | int | bool | str | None

# The escaping rules of QuestDB's own clients (c-questdb-client `must_escape_unquoted/quoted`): a
# backslash before the byte. Unquoted (table, symbol/tag and column names, symbol values): space,
# comma, `=`, backslash and line breaks (an escaped newline is data, an unescaped one ends the line).
# Quoted string fields: `"`, backslash and line breaks.
_UNQUOTED = re.compile(r"([ ,=\\\n\r])")
_QUOTED = re.compile(r'(["\\\n\r])')
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def escape_name(text: str) -> str:
    """A table name, column name or SYMBOL value, escaped for ILP."""
    return _UNQUOTED.sub(r"\\\1", text)


def _field(value: float | int | bool | str) -> str:
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int):
        if not INT64_MIN < value <= INT64_MAX:  # QuestDB's LONG null is INT64_MIN
            raise ValueError(f"integer {value} does not fit a 64-bit column")
        return f"{value}i"
    if isinstance(value, float):
        return repr(value)
    return '"' + _QUOTED.sub(r"\\\1", value) + '"'


def encode_row(
    table: str, columns: Mapping[str, Value], ts_micros: int, symbols: Mapping[str, str] | None = None
) -> str:
    """One line. `None` and non-finite floats are omitted (QuestDB stores them as null)."""
    head = escape_name(table)
    for name, value in (symbols or {}).items():
        head += f",{escape_name(name)}={escape_name(str(value))}"
    fields = ",".join(
        f"{escape_name(name)}={_field(value)}"
        for name, value in columns.items()
        if value is not None and not (isinstance(value, float) and not math.isfinite(value))
    )
    if not fields:
        raise ValueError("a line needs at least one non-null column")
    return f"{head} {fields} {int(ts_micros)}\n"
