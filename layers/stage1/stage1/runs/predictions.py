"""Inline predictions of `POST /api/runs`: parsed and checked completely before anything is
written, then sent to QuestDB as ILP over HTTP in one request (one QuestDB transaction), built by
`stage1.timeseries.ilp` — no `questdb` client, pyarrow or pandas: the API functions stay small.

Columns: a timestamp (`timestamp` or `timestamp_unix`: s/ms/µs/ns by magnitude, or ISO-8601),
`fold_number` (required, 0 .. 2^31-1), `prediction` (required column, values may be null),
`bar_index` and `target` (optional), and any further numeric columns: the thresholds, stored as
DOUBLE in the order `threshold_columns` declares, then in first-seen order.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from stage1.core.errors import BadRequest
from stage1.timeseries import ilp
from stage1.timeseries.timestamps import to_micros

TS_COLUMNS = ("timestamp", "timestamp_unix")
BASE_COLUMNS = ("bar_index", "fold_number", "prediction", "target")
OUTPUT_COLUMNS = ("timestamp", *BASE_COLUMNS)
MAX_EXTRA_COLUMNS = 256
MAX_PROBLEMS = 20
_NAME_RE = re.compile(r"^[a-z0-9_]{1,63}$")
INT_MAX = 2**63 - 1
FOLD_MAX = 2**31 - 1
# QuestDB TIMESTAMP (µs) ends in year 294247; unix micros beyond year 9999 are refused here.
TS_MAX = 253_402_300_799_999_999


@dataclass
class PredictionRow:
    ts: int  # unix microseconds
    bar_index: int | None
    fold_number: int
    prediction: float | None
    target: float | None
    extras: tuple[float | None, ...]


@dataclass
class PredictionBatch:
    extra_columns: list[str]
    rows: list[PredictionRow]

    @property
    def distinct_keys(self) -> int:
        """Rows QuestDB keeps: DEDUP UPSERT KEYS(timestamp, fold_number) collapses repeats."""
        return len({(r.ts, r.fold_number) for r in self.rows})


class _Problems:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.count = 0

    def add(self, row: int, column: str, problem: str, value: Any = None) -> None:
        self.count += 1
        if len(self.items) < MAX_PROBLEMS:
            item: dict[str, Any] = {"row": row, "column": column, "problem": problem}
            if value is not None:
                item["value"] = str(value)[:64]
            self.items.append(item)

    def raise_if_any(self) -> None:
        if self.count:
            raise BadRequest("invalid predictions", {"problems": self.items, "problem_count": self.count})


def _columns(present: Sequence[str], declared: Sequence[str] | None) -> tuple[str, list[str]]:
    """(timestamp column, extra columns in order) of a header, or 400 naming what is wrong."""
    names = list(present)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise BadRequest("duplicate prediction columns", {"duplicate_columns": duplicates})
    missing = [] if set(names) & set(TS_COLUMNS) else ["timestamp_unix|timestamp"]
    missing += [c for c in ("fold_number", "prediction") if c not in names]
    if missing:
        raise BadRequest("missing prediction columns", {"missing_columns": missing})
    ts_column = "timestamp" if "timestamp" in names else "timestamp_unix"
    known = {*TS_COLUMNS, *BASE_COLUMNS}
    extras = [c for c in (declared or []) if c not in known]
    extras += [c for c in names if c not in known and c not in extras]
    bad = [c for c in extras if not _NAME_RE.fullmatch(c)]
    if bad:
        raise BadRequest("invalid prediction column names: use 1-63 characters from [a-z0-9_]",
                         {"invalid_columns": [b[:80] for b in bad]})
    if len(extras) > MAX_EXTRA_COLUMNS:
        raise BadRequest("too many threshold columns", {"max": MAX_EXTRA_COLUMNS, "got": len(extras)})
    return ts_column, extras


def _number(value: Any) -> float | None:
    """A JSON/CSV cell as a float (None for null/empty); raises ValueError for anything else."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        number = float(value.strip())
    else:
        raise ValueError("not a number")
    if math.isnan(number):
        return None  # QuestDB stores NaN as null
    if math.isinf(number):
        raise ValueError("not a finite number")
    return number


def _integer(value: Any) -> int | None:
    number = value
    if isinstance(value, str):
        text = value.strip()
        if text == "":
            return None
        number = int(text) if text.lstrip("+-").isdigit() else float(text)
    if number is None:
        return None
    if isinstance(number, bool):
        raise ValueError("not an integer")
    if isinstance(number, float):
        if not number.is_integer():
            raise ValueError("not an integer")
        number = int(number)
    if not isinstance(number, int):
        raise ValueError("not an integer")
    return number


def _row(i: int, get: Any, ts_column: str, extras: list[str], problems: _Problems) -> PredictionRow | None:
    ok = True
    raw_ts = get(ts_column)
    ts = 0
    try:
        if raw_ts is None or raw_ts == "":
            raise BadRequest("missing")
        ts = to_micros(raw_ts.strip() if isinstance(raw_ts, str) else raw_ts)
        if not 0 <= ts <= TS_MAX:
            raise BadRequest("out of range")
    except BadRequest as exc:
        problems.add(i, ts_column, "timestamp " + (exc.message if exc.message in ("missing", "out of range")
                                                   else "not understood"), raw_ts)
        ok = False
    values: dict[str, Any] = {}
    for column, kind in (("fold_number", "int"), ("bar_index", "int"), ("prediction", "float"), ("target", "float")):
        raw = get(column)
        try:
            values[column] = _integer(raw) if kind == "int" else _number(raw)
        except (ValueError, TypeError, OverflowError):
            problems.add(i, column, "not an integer" if kind == "int" else "not a number", raw)
            ok = False
    fold = values.get("fold_number")
    if ok and (fold is None or not 0 <= fold <= FOLD_MAX):
        problems.add(i, "fold_number", "required, 0 .. 2147483647", fold)
        ok = False
    bar = values.get("bar_index")
    if ok and bar is not None and abs(bar) > INT_MAX:
        problems.add(i, "bar_index", "out of range", bar)
        ok = False
    extra_values: list[float | None] = []
    for column in extras:
        raw = get(column)
        try:
            extra_values.append(_number(raw))
        except (ValueError, TypeError):
            problems.add(i, column, "not a number", raw)
            ok = False
    if not ok:
        return None
    return PredictionRow(ts, bar, fold, values["prediction"], values["target"], tuple(extra_values))


def from_rows(rows: list[dict[str, Any]], declared: Sequence[str] | None) -> PredictionBatch:
    """JSON row objects. Keys are matched case-insensitively (QuestDB names are)."""
    seen: dict[str, None] = {}
    normalised: list[dict[str, Any]] = []
    for row in rows:
        lowered = {str(k).strip().lower(): v for k, v in row.items()}
        if len(lowered) != len(row):
            raise BadRequest("duplicate prediction columns (names differ only in case)", None)
        for key in lowered:
            seen.setdefault(key, None)
        normalised.append(lowered)
    if not normalised:
        raise BadRequest("predictions is empty", {"field": "predictions"})
    ts_column, extras = _columns(list(seen), declared)
    problems = _Problems()
    out = [r for i, row in enumerate(normalised) if (r := _row(i, row.get, ts_column, extras, problems))]
    problems.raise_if_any()
    return PredictionBatch(extras, out)


def from_csv(text: str, declared: Sequence[str] | None) -> PredictionBatch:
    """CSV text with a header row (a leading BOM and surrounding spaces are tolerated)."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise BadRequest("predictions_csv is empty", {"field": "predictions_csv"}) from None
    except csv.Error as exc:
        raise BadRequest("predictions_csv is not valid CSV", {"csv": str(exc)}) from None
    ts_column, extras = _columns(header, declared)
    index = {name: i for i, name in enumerate(header)}
    problems = _Problems()
    out: list[PredictionRow] = []
    try:
        for i, cells in enumerate(_non_blank(reader)):
            if len(cells) != len(header):
                problems.add(i, "*", f"expected {len(header)} cells, got {len(cells)}")
                continue

            def get(name: str, cells: list[str] = cells) -> str | None:
                pos = index.get(name)
                return None if pos is None else cells[pos]

            if (row := _row(i, get, ts_column, extras, problems)) is not None:
                out.append(row)
    except csv.Error as exc:
        raise BadRequest("predictions_csv is not valid CSV", {"csv": str(exc)}) from None
    problems.raise_if_any()
    if not out:
        raise BadRequest("predictions_csv has no rows", {"field": "predictions_csv"})
    return PredictionBatch(extras, out)


def _non_blank(reader: Iterable[list[str]]) -> Iterator[list[str]]:
    for cells in reader:
        if cells and any(c.strip() for c in cells):
            yield cells


def lines(table: str, batch: PredictionBatch) -> Iterator[str]:
    """The batch as ILP lines (nulls are left out of a line: QuestDB stores them as null)."""
    extras = batch.extra_columns
    for row in batch.rows:
        fields: dict[str, int | float] = {"fold_number": row.fold_number}
        if row.bar_index is not None:
            fields["bar_index"] = row.bar_index
        if row.prediction is not None:
            fields["prediction"] = row.prediction
        if row.target is not None:
            fields["target"] = row.target
        for name, value in zip(extras, row.extras, strict=True):
            if value is not None:
                fields[name] = value
        yield ilp.line(table, fields, row.ts)


def write(table: str, batch: PredictionBatch, *, timeout: float) -> int:
    """Send every row in one ILP-over-HTTP request (one QuestDB transaction). Returns rows sent."""
    ilp.write(table, lines(table, batch), timeout=timeout)
    return len(batch.rows)
