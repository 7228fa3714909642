"""InfluxDB line protocol (ILP) encoding for QuestDB's `/write` HTTP endpoint.

Why not the `questdb` client here: its wheels are manylinux_2_28 only, which the python3.11 Lambda
runtime (glibc 2.26) cannot load, and it pulls numpy into every API function. The API functions
write small, bounded batches (request bodies are capped at 10 MB), for which encoding lines in
Python is fast enough; bulk imports use the client's DataFrame path in the importer image.

One POST is one QuestDB transaction per table (ILP over HTTP), so a batch lands whole or not at all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

Value = float | int | bool | str | None

_NAME_ESCAPES = str.maketrans({" ": "\\ ", ",": "\\,", "=": "\\=", "\n": "", "\r": ""})


def _field(value: float | int | bool | str) -> str:
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return repr(value)
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def encode_row(
    table: str, columns: Mapping[str, Value], ts_micros: int, symbols: Mapping[str, str] | None = None
) -> str:
    """One line. `None` and non-finite floats are omitted (QuestDB stores them as null)."""
    head = table.translate(_NAME_ESCAPES)
    for name, value in (symbols or {}).items():
        head += f",{name.translate(_NAME_ESCAPES)}={str(value).translate(_NAME_ESCAPES)}"
    fields = ",".join(
        f"{name.translate(_NAME_ESCAPES)}={_field(value)}"
        for name, value in columns.items()
        if value is not None and not (isinstance(value, float) and not math.isfinite(value))
    )
    if not fields:
        raise ValueError("a line needs at least one non-null column")
    return f"{head} {fields} {int(ts_micros)}\n"
