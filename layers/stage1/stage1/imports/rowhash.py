"""The dataset fingerprint's row-hash sums (`stage1.timeseries.fingerprint`) computed by the importer
from the batches it sends, so that a first import need not have QuestDB scan the table again
(docs/imports.md, "The fingerprint of a first import").

NumPy computes, per group of columns, exactly what fingerprint.py has QuestDB compute per row:
`h = ts`, then per value part `h = (h ^ part) * PRIME` in int64 (which wraps like Java's long), a
DOUBLE fed as its integer part (truncated toward zero, Java's `(long)` cast) and its fraction
`(x - whole) * 2^52` cast the same way. The sums are only used when they provably equal QuestDB's,
so the hasher gives up (`reason`) on anything outside the range where the two agree without doubt:
- a timestamp not strictly above every earlier one of the import (DEDUP might have dropped a row);
- a null, NaN, ±inf or |x| >= 2^52 double (QuestDB's null constants and top-bits part), an integer
  equal to INT64_MIN (QuestDB's LONG null), any type other than float64 / signed integers (text is
  md5-hashed by QuestDB);
- an intermediate hash equal to INT64_MIN (QuestDB's long arithmetic turns it into null: the row
  would drop out of QuestDB's sum). `(h ^ p) * PRIME == INT64_MIN` iff `h ^ p == INT64_MIN` (PRIME
  is odd), so checking each product covers the XOR before it.
The caller still checks, against QuestDB, that the table holds only these rows and has exactly the
predicted columns (`stage1.imports.service`); anything else falls back to QuestDB's scan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from stage1.timeseries import reads
from stage1.timeseries.fingerprint import GROUP_COLUMNS, PRIME, Fingerprint, combine
from stage1.timeseries.kinds import TIMESTAMP
from stage1.timeseries.wal import wal_status

_P = np.int64(PRIME)
_MIN = np.iinfo(np.int64).min
_TWO52 = float(1 << 52)
_MASK = (1 << 64) - 1


@dataclass
class Hashed:
    """What the importer hashed: the value columns as (name, QuestDB type) in the order hashed, the
    row count, the timestamp bounds (µs) and one sum (mod 2^64) per group of `GROUP_COLUMNS`."""

    columns: list[tuple[str, str]]
    rows: int
    first_ts: int
    last_ts: int
    sums: list[int]


@dataclass
class RowHasher:
    """Feed it every batch the import sends (`add`), in file order; `result()` at the end.
    `declared`: the columns the table is created with, in their order (the rest are added by ILP
    in the order of the frame's columns): the hash follows the table's column order."""

    declared: list[tuple[str, str]]
    reason: str | None = None
    columns: list[tuple[str, str]] | None = None
    rows: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    sums: list[int] = field(default_factory=list)

    def refuse(self, why: str) -> None:
        self.reason = self.reason or why

    def add(self, table: pa.Table) -> None:
        if self.reason is not None or table.num_rows == 0:
            return
        order = self._order(table)
        if order is None:
            return
        ts = _array(table.column(TIMESTAMP)).cast(pa.int64()).to_numpy()
        if (self.last_ts is not None and ts[0] <= self.last_ts) or not bool(np.all(ts[1:] > ts[:-1])):
            return self.refuse("timestamps not strictly increasing")
        values = []
        for name, qtype in order:
            parts = _parts(_array(table.column(name)), qtype)
            if isinstance(parts, str):
                return self.refuse(f"{name}: {parts}")
            values.append(parts)
        sums = []
        for start in range(0, max(len(values), 1), GROUP_COLUMNS):
            h = ts.copy()
            for parts in values[start:start + GROUP_COLUMNS]:
                for part in parts:
                    np.bitwise_xor(h, part, out=h)
                    np.multiply(h, _P, out=h)
                    if bool((h == _MIN).any()):
                        return self.refuse("a row hash met INT64_MIN")
            sums.append(int(h.sum(dtype=np.int64)))  # wraps mod 2^64 like QuestDB's sum(long)
        self.sums = [(a + b) & _MASK for a, b in zip(self.sums or [0] * len(sums), sums, strict=True)]
        self.first_ts = int(ts[0]) if self.first_ts is None else self.first_ts
        self.last_ts = int(ts[-1])
        self.rows += table.num_rows

    def _order(self, table: pa.Table) -> list[tuple[str, str]] | None:
        """The value columns in the table's predicted order, each with the QuestDB type its Arrow type
        is stored as; the same for every batch."""
        kinds = {}
        for f in table.schema:
            if f.name == TIMESTAMP:
                continue
            kinds[f.name] = ("DOUBLE" if pa.types.is_float64(f.type)
                             else "LONG" if pa.types.is_signed_integer(f.type) else None)
        odd = sorted(n for n, k in kinds.items() if k is None)
        if odd:
            self.refuse(f"column types not hashed here: {', '.join(odd)[:200]}")
            return None
        declared = [(n, t) for n, t in self.declared]
        if any(kinds.get(n) != t for n, t in declared):
            self.refuse("a declared column is absent or of another type")
            return None
        names = {n for n, _ in declared}
        order = declared + [(n, k) for n, k in kinds.items() if n not in names]  # type: ignore[misc]
        if self.columns is None:
            self.columns = order
        elif order != self.columns:
            self.refuse("the columns changed between batches")
            return None
        return order

    def result(self) -> Hashed | None:
        if self.reason is not None or self.columns is None or self.first_ts is None or self.last_ts is None:
            return None
        return Hashed(self.columns, self.rows, self.first_ts, self.last_ts, self.sums)


def _array(column: pa.ChunkedArray) -> pa.Array:
    return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)


def _parts(arr: pa.Array, qtype: str) -> list[np.ndarray] | str:
    """The exact long parts of a column (fingerprint.py's `_parts`), or why they are not computed."""
    if arr.null_count:
        return "has nulls"
    if qtype == "LONG":
        v = arr.cast(pa.int64()).to_numpy()
        return "holds INT64_MIN (QuestDB's null)" if bool((v == _MIN).any()) else [v]
    x = arr.to_numpy()
    if not bool((np.abs(x) < _TWO52).all()):  # False for NaN and ±inf too
        return "a value is NaN, infinite or beyond 2^52"
    whole = np.trunc(x)
    frac = np.subtract(x, whole)
    np.multiply(frac, _TWO52, out=frac)  # exact: a power of two, |frac| < 1
    return [whole.astype(np.int64), frac.astype(np.int64)]  # float → int64 truncates toward zero


RENAME_TXNS = 1  # QuestDB 9.3.4's RENAME TABLE of a WAL table is one sequencer transaction


def staging_txn(table: str) -> int | None:
    """The staging table's last WAL transaction (all applied), before it is renamed; None if unknown."""
    status = wal_status(table)
    if status is None or status["writerTxn"] != status["sequencerTxn"]:
        return None
    return int(status["sequencerTxn"])  # type: ignore[call-overload]


def verified(target: str, hashed: Hashed, txn: int | None) -> Fingerprint | str:
    """The importer's fingerprint of `target` (the staging table renamed to it), or why QuestDB must
    compute it: nothing may have touched the table since the rename (its WAL is exactly the staging
    table's transactions plus the rename, all applied: no other import's INSERT or ALTER), and its
    columns must be the ones hashed, in the order hashed, with the types hashed."""
    status = wal_status(target)
    if txn is None or status is None:
        return "WAL state unknown"
    if not status["writerTxn"] == status["sequencerTxn"] == txn + RENAME_TXNS:
        return "the table changed after the rename"
    columns = reads.table_columns(target)
    ts = [c for c in columns if c.designated]
    if [(c.name, c.type.upper()) for c in ts] != [(TIMESTAMP, "TIMESTAMP")]:
        return "designated timestamp differs"
    if [(c.name, c.type.upper()) for c in columns if not c.designated] != hashed.columns:
        return "the table's columns differ from those hashed"
    return combine(columns, hashed.rows, hashed.first_ts, hashed.last_ts, hashed.sums)
