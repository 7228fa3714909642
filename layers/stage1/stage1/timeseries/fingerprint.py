"""A content fingerprint of one QuestDB table, computed by QuestDB in one scan (docs/resources.md,
"Which data a run saw").

Per row, QuestDB computes a 64-bit hash of the row's values, FNV-1a style: `h = ts`, then for each
value part `h = (h ^ part) * P` (long arithmetic wraps). Each step is a bijection of its input, so
changing any ONE value of a row always changes that row's hash, and the table's `sum(h)` (mod 2^64)
always changes with it; the sum does not depend on row order, partitions or how often the same rows
were re-imported (DEDUP keeps one row per key). A double is fed as three exact long parts: its
integer part, its fraction times 2^52 (exact for |x| < 2^52; below 1 the resolution is 2^-52) and
`x * 2^-52` (values beyond 2^63). Text-like columns are hashed with md5 (`sum` of the digests as
long256) — about 6 µs a row, so only when a table has such columns. Count, first/last timestamp,
the column names and types and every sum are combined into one sha256 hex digest in Python.
The sums are taken over runs of whole partitions of about `CHUNK_ROWS` rows (1M) and added up in Python
(mod 2^64 / 2^256): the digest does not depend on how the table is split.

Columns are hashed in groups of `GROUP_COLUMNS` (one `sum` each, all in one query per
`QUERY_GROUPS` groups) so that a wide indicator table never builds one deeply nested expression.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from stage1.core.budget import Budget
from stage1.core.errors import BadRequest
from stage1.core.questdb import QuestDBError, get_questdb, ident
from stage1.timeseries import reads
from stage1.timeseries.timestamps import to_micros

ALGORITHM = "fnv64-sum/v1"
GROUP_COLUMNS = 8
QUERY_GROUPS = 8
CHUNK_ROWS = 1_000_000  # rows of whole partitions one statement sums
RETRIES = 2
PRIME = 1099511628211  # FNV-1a 64-bit prime
NULLS = (-4417276706812531889, 7113472399480571277, -2401053089480216690)  # a null/NaN part
_PRIME = f"{PRIME}L"
_NULL = tuple(f"{n}L" for n in NULLS)
_TWO52 = "4503599627370496.0"
_TWO_M52 = "2.220446049250313e-16"
_COLUMN_RE = re.compile(r"^[A-Za-z0-9_]{1,127}$")
_FLOATS = {"DOUBLE", "FLOAT"}
_INTEGERS = {"LONG", "INT", "SHORT", "BYTE", "TIMESTAMP", "TIMESTAMP_NS", "DATE", "BOOLEAN", "CHAR"}


@dataclass(frozen=True)
class Fingerprint:
    rows: int
    first_ts: int | None  # the designated timestamp as QuestDB's long (micros), None when empty
    last_ts: int | None
    digest: str | None  # sha256 hex; None for a table that does not exist


def _col(name: str) -> str:
    if not _COLUMN_RE.fullmatch(name):
        raise BadRequest("unsupported column name", {"column": name[:80]})
    return f'"{name}"'


def _parts(column: reads.TableColumn) -> list[str]:
    """Exact long images of one value (each coalesced: a null must not drop the row from the sum)."""
    c, kind = _col(column.name), column.type.upper()
    if kind in _FLOATS:
        whole = f"cast({c} as long)"
        # Beyond 2^63 the integer part is null and the value's top bits (x * 2^-52) stand in for it.
        return [f"coalesce({whole}, cast({c} * {_TWO_M52} as long), {_NULL[0]})",
                f"coalesce(cast(({c} - {whole}) * {_TWO52} as long), {_NULL[1]})"]
    if kind in _INTEGERS:
        return [f"coalesce(cast({c} as long), {_NULL[0]})"]
    return []  # text-like: hashed by md5 below


def _row_hash(ts: str, parts: list[str]) -> str:
    h = f"coalesce(cast({ts} as long), {_NULL[0]})"
    for part in parts:
        h = f"(({h}) ^ {part}) * {_PRIME}"
    return h


def groups(numeric: list[reads.TableColumn]) -> list[list[reads.TableColumn]]:
    """The numeric columns (table order, designated timestamp excluded) as hashed together: one
    row-hash sum per group (a table without any: one group, the timestamp alone)."""
    return [numeric[i:i + GROUP_COLUMNS] for i in range(0, max(len(numeric), 1), GROUP_COLUMNS)]


def combine(columns: list[reads.TableColumn], rows: int, lo: int | None, hi: int | None,
            sums: list[int]) -> Fingerprint:
    """The digest of a table from its columns (table order), count, timestamp bounds and sums (each
    reduced mod 2^64 or 2^256): the one step both QuestDB's scan and the importer's sums go through."""
    schema = [(c.name, c.type.upper()) for c in columns]
    payload = {"algorithm": ALGORITHM, "schema": schema, "rows": rows, "lo": lo, "hi": hi, "sums": sums}
    digest = hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode()).hexdigest()
    return Fingerprint(rows, None if lo is None else int(lo), None if hi is None else int(hi), digest)


def _text_hash(ts: str, columns: list[reads.TableColumn]) -> str:
    values = ", '\x1f', ".join(f"coalesce(cast({_col(c.name)} as varchar), '\x1e')" for c in columns)
    return f"sum(cast(concat('0x', md5(concat(cast({ts} as long), '\x1f', {values}))) as long256))"


def _ranges(name: str, timeout: float | None) -> list[str]:
    """WHERE clauses that split the table into runs of whole partitions of about `CHUNK_ROWS` rows
    (the first open below, the last open above: every row is in exactly one). One statement over
    10M rows was aborted by QuestDB ("timeout, query aborted") under load; chunks are short."""
    parts = get_questdb().exec(f"select minTimestamp, numRows from table_partitions('{name}') order by index",  # noqa: S608
                               timeout=timeout).dataset
    splits, rows = [], 0
    for low, count in parts:
        if rows >= CHUNK_ROWS and low is not None:
            splits.append(to_micros(low))
            rows = 0
        rows += int(count or 0)
    bounds = [None, *splits, None]
    return [" where " + " and ".join(
        ([f"{{ts}} >= cast({lo} as timestamp)"] if lo is not None else [])
        + ([f"{{ts}} < cast({hi} as timestamp)"] if hi is not None else [])) if lo is not None or hi is not None else ""
        for lo, hi in zip(bounds, bounds[1:], strict=False)]


def _add(total: int, value: object, bits: int) -> int:
    """Sums of chunks add up (mod 2^bits) to the table's sum; a chunk's null sum (no rows) is 0."""
    if value is None:
        return total
    number = int(value, 16) if isinstance(value, str) else int(value)  # type: ignore[arg-type]
    return (total + number) % (1 << bits)


def _read(statement: str, timeout: float | None, budget: Budget | None) -> list[object]:
    """One chunk's aggregates. QuestDB 9.3.4 on the loaded 2-core box now and then answers a
    multi-second aggregate with "timeout, query aborted" well inside its Statement-Timeout; the
    statement only reads, so it is asked again (twice at most)."""
    for attempt in range(RETRIES + 1):
        try:
            return get_questdb().exec(statement, timeout=_cut(timeout, budget)).dataset[0]
        except QuestDBError as exc:
            if "timeout" not in exc.questdb_message or attempt == RETRIES:
                raise
    raise AssertionError("unreachable")


def _cut(timeout: float | None, budget: Budget | None) -> float | None:
    return budget.left(timeout) if budget is not None else timeout


def fingerprint(table: str, *, timeout: float | None = None, budget: Budget | None = None) -> Fingerprint:
    """The table's fingerprint (a table that does not exist: rows 0, digest None). `timeout` caps
    each statement; `budget` (a request's) bounds them all together (503 once spent)."""
    name = ident(table)
    qdb = get_questdb()
    if not qdb.table_exists(name):
        return Fingerprint(0, None, None, None)
    columns = reads.table_columns(name, timeout=_cut(reads.STATE_TIMEOUT, budget))
    ts_col = reads.designated(columns, name)
    ts = _col(ts_col.name)
    others = [c for c in columns if c.name != ts_col.name]
    numeric = [c for c in others if _parts(c)]
    text = [c for c in others if not _parts(c)]
    sums = [f"sum({_row_hash(ts, [p for c in group for p in _parts(c)])})" for group in groups(numeric)]
    widths = [64] * len(sums)
    if text:
        sums.append(_text_hash(ts, text))
        widths.append(256)
    head = f"count() n, min(cast({ts} as long)) lo, max(cast({ts} as long)) hi"
    n, lo, hi, totals = 0, None, None, [0] * len(sums)
    for where in _ranges(name, _cut(timeout, budget)):
        for i in range(0, len(sums), QUERY_GROUPS):
            select = ", ".join([head, *sums[i:i + QUERY_GROUPS]])
            row = _read(f'select {select} from "{name}"{where.format(ts=ts)}', timeout, budget)  # noqa: S608 - validated names
            for j, value in enumerate(row[3:], start=i):
                totals[j] = _add(totals[j], value, widths[j])
        n += int(row[0] or 0)
        lo = row[1] if lo is None or (row[1] is not None and row[1] < lo) else lo
        hi = row[2] if hi is None or (row[2] is not None and row[2] > hi) else hi
    return combine(columns, n, lo, hi, totals)
