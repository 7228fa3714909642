"""What one import may cost, in bytes and columns, checked before the work it bounds.

Rows alone bound nothing: one Parquet row can hold megabytes, a dictionary-encoded column expands
many times on decoding, a gzip stream 1000-fold. Every limit here is a setting (core/settings.py,
"Import limits"); a file over one fails its job with a message naming the limit, before the rows
that would exceed it are read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stage1.core.settings import Settings, get_settings
from stage1.imports.errors import ImportFailed


@dataclass(frozen=True)
class Limits:
    max_columns: int = 1_000
    batch_bytes: int = 64 << 20  # one decoded Arrow batch in memory
    row_group_bytes: int = 1 << 30  # a Parquet row group's uncompressed size (its metadata)
    string_bytes: int = 1 << 20  # one string value
    metadata_bytes: int = 16 << 20  # a Parquet footer, an Arrow IPC message header
    expansion_ratio: int = 100  # decoded bytes per stored byte of the file (gzip, Parquet, Arrow)
    block_bytes: int = 512 << 10  # a CSV block: no CSV row may be longer

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Limits:
        s = (settings or get_settings()).imports
        return cls(max_columns=s.import_max_columns, batch_bytes=s.import_max_batch_bytes,
                   row_group_bytes=s.import_max_row_group_bytes, string_bytes=s.import_max_string_bytes,
                   metadata_bytes=s.import_max_metadata_bytes, expansion_ratio=s.import_max_expansion_ratio,
                   block_bytes=s.import_block_bytes)


def over(what: str, found: int, limit: int, setting: str, **details: Any) -> ImportFailed:
    """The failure of a file over a limit: what, how much, the limit and the setting that sets it."""
    return ImportFailed(f"{what}: {found:,} exceeds the limit of {limit:,} ({setting})",
                        {"limit": setting, "max": limit, "found": found, **details})


def decoded_budget(file_bytes: int, limits: Limits) -> int:
    """Most bytes a file of `file_bytes` may decode to: a bomb stops here, not at the disk's end."""
    return max(limits.batch_bytes, file_bytes * limits.expansion_ratio)


def check_columns(n: int, limits: Limits) -> None:
    if n > limits.max_columns:
        raise over("too many columns", n, limits.max_columns, "import_max_columns")
