"""Inline predictions of `POST /api/runs`: parsed and checked completely before anything is
written, then sent to QuestDB as ILP over HTTP in one request (one QuestDB transaction) through
`QuestDB.write_lines` — no `questdb` client, pyarrow or pandas: the API functions stay small.

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
from stage1.core.questdb import get_questdb, ident
from stage1.timeseries.timestamps import to_micros

TS_COLUMNS = ("timestamp", "timestamp_unix")
BASE_COLUMNS = ("bar_index", "fold_number", "prediction", "target")
OUTPUT_COLUMNS = ("timestamp", *BASE_COLUMNS)
MAX_EXTRA_COLUMNS = 256
MAX_PROBLEMS = 20
# The row path stops at this many problems: a 10 MB body of bad rows would otherwise cost ~26 s of
# CPU (near the Lambda's limit) to list problems nobody reads past the first few.
STOP_AFTER_PROBLEMS = 1000
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
    """The predictions by column (a column per field; `extras` one list per threshold column)."""

    extra_columns: list[str]
    ts: list[int]  # unix microseconds
    fold_number: list[int]
    bar_index: list[int | None]
    prediction: list[float | None]
    target: list[float | None]
    extras: list[list[float | None]]

    @classmethod
    def from_rows(cls, extra_columns: list[str], rows: list[PredictionRow]) -> PredictionBatch:
        return cls(extra_columns, [r.ts for r in rows], [r.fold_number for r in rows], [r.bar_index for r in rows],
                   [r.prediction for r in rows], [r.target for r in rows],
                   [[r.extras[k] for r in rows] for k in range(len(extra_columns))])

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def rows(self) -> list[PredictionRow]:
        extras = list(zip(*self.extras, strict=True)) if self.extras else [()] * len(self)
        return [PredictionRow(*values) for values in zip(self.ts, self.bar_index, self.fold_number, self.prediction,
                                                         self.target, extras, strict=True)]

    @property
    def distinct_keys(self) -> int:
        """Rows QuestDB keeps: DEDUP UPSERT KEYS(timestamp, fold_number) collapses repeats."""
        return len(set(zip(self.ts, self.fold_number, strict=True)))


# ---- the fast path: whole columns converted by builtins; any surprise falls back to the row path
def _is_null(value: Any) -> bool:
    return value is None or value == ""


def _ts_column(values: list[Any]) -> list[int]:
    """Unix s/ms/µs/ns integers (or digit strings) → µs, exactly as `to_micros` converts them."""
    kinds = set(map(type, values))
    if kinds == {str}:
        if not all(map(str.isdigit, values)):
            raise ValueError
        ints = list(map(int, values))
    elif kinds == {int}:
        ints = values
    else:
        raise ValueError
    if not ints or min(ints) < 0:
        raise ValueError
    if max(ints) < 10**11:
        out = [n * 1_000_000 for n in ints]
    else:
        out = [n * 1_000_000 if n < 10**11 else n * 1_000 if n < 10**14 else n if n < 10**17 else n // 1_000
               for n in ints]
    if max(out) > TS_MAX:
        raise ValueError
    return out


def _int_column(values: list[Any], low: int, high: int) -> list[int | None]:
    present = [v for v in values if not _is_null(v)]
    kinds = set(map(type, present))
    if kinds <= {int}:
        converted = present
    elif kinds == {str} and all(map(str.isdigit, present)):
        converted = list(map(int, present))
    else:
        raise ValueError
    if converted and (min(converted) < low or max(converted) > high):
        raise ValueError
    if len(converted) == len(values):
        return converted
    it = iter(converted)
    return [None if _is_null(v) else next(it) for v in values]


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _float_column(values: list[Any]) -> list[float | None]:
    if not set(map(type, values)) <= _SCALARS:
        raise ValueError
    if None in values or "" in values:
        out: list[float | None] = [None if _is_null(v) else float(v) for v in values]
        present = [x for x in out if x is not None]
    else:
        out = present = list(map(float, values))
    if not all(map(math.isfinite, present)):  # NaN and infinities: the row path decides
        raise ValueError
    return out


def _columnar(columns: dict[str, list[Any]], ts_column: str, extras: list[str], n: int) -> PredictionBatch | None:
    """The whole batch by column, or None when any value needs the row path (which then converts
    what it can and reports exactly what it cannot)."""
    nulls: list[Any] = [None] * n
    try:
        fold = _int_column(columns["fold_number"], 0, FOLD_MAX)
        if None in fold:
            return None
        return PredictionBatch(
            list(extras), _ts_column(columns[ts_column]), fold,  # type: ignore[arg-type]
            _int_column(columns.get("bar_index", nulls), -INT_MAX, INT_MAX),
            _float_column(columns["prediction"]), _float_column(columns.get("target", nulls)),
            [_float_column(columns.get(c, nulls)) for c in extras],
        )
    except (ValueError, TypeError, OverflowError):
        return None


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
        if self.count >= STOP_AFTER_PROBLEMS:
            self.raise_if_any(stopped=True)

    def raise_if_any(self, *, stopped: bool = False) -> None:
        if self.count:
            details: dict[str, Any] = {"problems": self.items, "problem_count": self.count}
            if stopped:
                details["stopped_after"] = self.count  # the rest of the input was not checked
            raise BadRequest("invalid predictions", details)


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
    wanted = [ts_column, *BASE_COLUMNS, *extras]
    columns = {c: [row.get(c) for row in normalised] for c in wanted if c in seen}
    if (batch := _columnar(columns, ts_column, extras, len(normalised))) is not None:
        return batch
    problems = _Problems()
    out = [r for i, row in enumerate(normalised) if (r := _row(i, row.get, ts_column, extras, problems))]
    problems.raise_if_any()
    return PredictionBatch.from_rows(extras, out)


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
    try:
        data = _non_blank(reader)
    except csv.Error as exc:
        raise BadRequest("predictions_csv is not valid CSV", {"csv": str(exc)}) from None
    if not data:
        raise BadRequest("predictions_csv has no rows", {"field": "predictions_csv"})
    if set(map(len, data)) == {len(header)}:
        by_column = list(zip(*data, strict=True))
        columns = {name: list(by_column[i]) for name, i in index.items()}
        if (batch := _columnar(columns, ts_column, extras, len(data))) is not None:
            return batch
    problems = _Problems()
    out: list[PredictionRow] = []
    # The row path: converts what it can, reports exactly what it cannot.
    for i, cells in enumerate(data):
        if len(cells) != len(header):
            problems.add(i, "*", f"expected {len(header)} cells, got {len(cells)}")
            continue

        def get(name: str, cells: list[str] = cells) -> str | None:
            pos = index.get(name)
            return None if pos is None else cells[pos]

        if (row := _row(i, get, ts_column, extras, problems)) is not None:
            out.append(row)
    problems.raise_if_any()
    return PredictionBatch.from_rows(extras, out)


def _non_blank(reader: Iterable[list[str]]) -> list[list[str]]:
    """The rows that hold anything but blanks (a trailing empty line, a line of spaces)."""
    return [cells for cells in reader if len(cells) > 1 or (cells and cells[0].strip())]


def lines(table: str, batch: PredictionBatch) -> Iterator[str]:
    """The batch as ILP lines (nulls are left out of a line: QuestDB stores them as null). Every
    value was validated by the parser (finite floats, ints in range, names `[a-z0-9_]`, so nothing
    to escape), so the lines are formatted by column, exactly as `stage1.core.ilp.encode_row` would."""
    head = f"{ident(table)} fold_number={{}}i".format
    pieces: list[Iterable[str]] = [map(head, batch.fold_number)]
    fields = [("bar_index", batch.bar_index, "i"), ("prediction", batch.prediction, ""),
              ("target", batch.target, ""),
              *((name, col, "") for name, col in zip(batch.extra_columns, batch.extras, strict=True))]
    for name, values, suffix in fields:
        fmt = f",{name}={{!r}}{suffix}".format
        if None not in values:
            pieces.append(map(fmt, values))
        elif any(v is not None for v in values):
            pieces.append(["" if v is None else fmt(v) for v in values])
    pieces.append(map(" {}\n".format, batch.ts))
    return map("".join, zip(*pieces, strict=True))


def write(table: str, batch: PredictionBatch, *, timeout: float) -> int:
    """Send every row in one ILP-over-HTTP request (one QuestDB transaction). Returns rows sent."""
    get_questdb().write_lines("".join(lines(table, batch)).encode(), timeout=timeout)
    return len(batch)
