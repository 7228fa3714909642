"""`GET /api/runs/compare`: one table of every hyperparameter, walk-config key, summary metric and
per-fold metric (`folds.<n>.metrics.<key>`, and over a run's folds `folds.metrics.<key>.mean|min|max`,
the names the runs `filter=` uses) of 2..50 runs, saying which keys differ.

Bounded before the JSON is read: at most `COMPARE_MAX_RUNS` distinct UUIDs; no run's JSON (its
hyperparameters, walk config, summary and fold metrics as text, measured in Postgres) above the
project's response cap (`exports.export_inline_max_bytes`), all of them at most `READ_FACTOR` times
it; while the table is built its size is counted and it stops with a 413 at the cap.
Nested JSON objects are flattened to dotted keys down to `COMPARE_MAX_DEPTH` segments; deeper
objects (and every list) are one value.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from typing import Any, Literal

import msgspec

from stage1.core import db
from stage1.core.csvtext import CsvBody, csv_lines
from stage1.core.errors import BadRequest, NotFound, PayloadTooLarge
from stage1.core.refs import as_uuid
from stage1.core.settings import get_settings
from stage1.core.times import utc
from stage1_wire.compare import (
    COMPARE_MAX_DEPTH,
    COMPARE_MAX_RUNS,
    COMPARE_MIN_RUNS,
    ComparedRun,
    ComparisonRow,
    RunComparison,
    Section,
)

AGGREGATES = ("mean", "min", "max")
# The JSON of all compared runs (hyperparameters, walk config, summary and fold metrics, as text) may
# be at most this many times the response cap: what a table is built from stays bounded in memory.
READ_FACTOR = 4
# JSON bytes of a row besides its key, section and values: `{"key":"","section":"","values":[],"differs":false},`.
_ROW_OVERHEAD = 56
_SECTIONS: tuple[Section, ...] = ("hyperparameters", "walk_config", "summary_metrics")
_ENCODE = msgspec.json.Encoder()


def parse_run_ids(text: str) -> list[uuid.UUID]:
    """`a,b,c` → UUIDs in the order given: 2..50 of them, each a UUID, none twice; else a 400."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) > COMPARE_MAX_RUNS:
        raise BadRequest(f"at most {COMPARE_MAX_RUNS} run_ids", {"field": "run_ids", "count": len(parts),
                                                                  "max": COMPARE_MAX_RUNS})
    bad = [p[:80] for p in parts if as_uuid(p) is None]
    if bad:
        raise BadRequest("invalid run_ids: not UUIDs", {"field": "run_ids", "invalid": bad})
    ids = [u for u in (as_uuid(p) for p in parts) if u is not None]
    twice = sorted({str(u) for u in ids if ids.count(u) > 1})  # 50 at most: quadratic is nothing
    if twice:
        raise BadRequest("run_ids repeat a run", {"field": "run_ids", "duplicates": twice})
    if len(ids) < COMPARE_MIN_RUNS:
        raise BadRequest(f"compare needs at least {COMPARE_MIN_RUNS} run_ids", {"field": "run_ids",
                                                                                "count": len(ids)})
    return ids


def compare_runs(run_ids: str, *, fmt: Literal["json", "csv"] = "json") -> RunComparison | CsvBody:
    ids = parse_run_ids(run_ids)
    cap = get_settings().exports.export_inline_max_bytes
    with db.connection() as conn:
        runs = conn.execute(
            "select r.run_id, d.dataset_slug, r.status, r.created_at, f.fold_count, "
            "octet_length(r.hyperparameters::text) + octet_length(r.walk_config::text) "
            "+ octet_length(r.summary_metrics::text) + f.fold_bytes as json_bytes "
            "from walkforward_runs r join stage1_datasets d on d.dataset_id = r.dataset_id "
            "cross join lateral (select count(*) as fold_count, coalesce(sum(octet_length(x.metrics::text)), 0) "
            "as fold_bytes from walkforward_folds x where x.run_id = r.run_id) f "
            "where r.run_id = any(%s)", (ids,)).fetchall()
        found = {r["run_id"]: r for r in runs}
        unknown = [str(i) for i in ids if i not in found]
        if unknown:
            raise NotFound("runs not found", {"run_ids": unknown})
        # Refused before the JSON is read: one run's JSON alone above the cap (the table holds all of
        # it), or all of them above READ_FACTOR x the cap (what the table is built from stays bounded).
        largest = max(int(r["json_bytes"] or 0) for r in runs)
        if largest > cap:
            raise _too_large(largest, cap)
        read = sum(int(r["json_bytes"] or 0) for r in runs)
        if read > READ_FACTOR * cap:
            raise _too_large(read, READ_FACTOR * cap)
        for row in conn.execute("select run_id, hyperparameters, walk_config, summary_metrics from walkforward_runs "
                                "where run_id = any(%s)", (ids,)).fetchall():
            found[row["run_id"]].update(row)
        gone = [str(i) for i in ids if "hyperparameters" not in found[i]]  # deleted since the first read
        if gone:
            raise NotFound("runs not found", {"run_ids": gone})
        folds = conn.execute("select run_id, fold_number, metrics from walkforward_folds where run_id = any(%s) "
                             "order by run_id, fold_number", (ids,)).fetchall()
    per_run: dict[uuid.UUID, list[tuple[int, dict[str, Any]]]] = {i: [] for i in ids}
    for f in folds:
        per_run[f["run_id"]].append((f["fold_number"], f["metrics"] or {}))
    ordered = [found[i] for i in ids]
    table = build_table(ordered, per_run, max_bytes=cap)
    if fmt == "csv":
        return CsvBody("runs_compare.csv", csv_lines(csv_header(table), csv_rows(table)))
    return table


def _too_large(size: int, cap: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the comparison is larger than {cap} bytes; compare fewer runs",
                           {"size": size, "max_bytes": cap})


# ------------------------------------------------------------------------------------ the table
def flatten(value: Any, prefix: str, depth: int = 0) -> Iterator[tuple[str, Any]]:
    """(dotted key, leaf) pairs of a JSON object; past `COMPARE_MAX_DEPTH` segments, or for an
    empty object, the object itself is the leaf."""
    if isinstance(value, dict) and value and depth < COMPARE_MAX_DEPTH:
        for key in value:
            yield from flatten(value[key], f"{prefix}.{key}", depth + 1)
    else:
        yield prefix, value


def _number(value: Any) -> float | None:
    """A JSON number as a float (booleans are not numbers); None for anything else. Called per cell:
    exact type checks, as JSON decodes to exactly these types."""
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is int:
        return float(value)
    return None


def fold_aggregates(folds: list[tuple[int, dict[str, Any]]]) -> dict[str, float | int]:
    """mean/min/max of each top-level numeric fold metric over a run's folds (folds lacking it,
    or holding a non-number, are left out of that metric)."""
    values: dict[str, list[float]] = {}
    for _, metrics in folds:
        for key, raw in metrics.items():
            num = _number(raw)
            if num is not None:
                values.setdefault(key, []).append(num)
    out: dict[str, float | int] = {}
    for key, nums in values.items():  # keys as the runs filter= names them: folds.metrics.<key>.mean
        out[f"folds.metrics.{key}.mean"] = sum(nums) / len(nums)
        out[f"folds.metrics.{key}.min"] = min(nums)
        out[f"folds.metrics.{key}.max"] = max(nums)
    return out


def _same(value: Any) -> tuple[str, Any]:
    """A value's identity for `differs`: numbers by value (1 == 1.0), booleans apart from numbers,
    everything else by its JSON (whose length also counts toward the answer's size)."""
    num = _number(value)
    if num is not None:
        return ("n", num)
    return ("j", _ENCODE.encode(value))


def _row_order(key: str) -> tuple[Any, ...]:
    """Folds by number, then metric; a metric's aggregates as mean, min, max; else by key."""
    parts = key.split(".", 2)
    if parts[0] == "folds" and len(parts) > 2 and parts[1].isdigit():
        return (int(parts[1]), parts[2], 0)
    metric, _, agg = key.rpartition(".")
    if key.startswith("folds.metrics.") and agg in AGGREGATES:
        return (0, metric, AGGREGATES.index(agg))
    return (0, key, 0)


def build_table(runs: list[dict[str, Any]], folds: dict[uuid.UUID, list[tuple[int, dict[str, Any]]]], *,
                max_bytes: int | None = None) -> RunComparison:
    """The rows of `runs` (in that order): each section's keys sorted, folds by number. Stops with a
    413 as soon as the rows' JSON passes `max_bytes` (counted as they are made, within a few bytes
    a row of what the answer takes)."""
    sections: dict[Section, list[dict[str, Any]]] = {s: [] for s in (*_SECTIONS, "fold_aggregates", "folds")}
    for run in runs:
        for section in _SECTIONS:
            sections[section].append(dict(flatten(run[section] or {}, section)) if run[section] else {})
        run_folds = folds[run["run_id"]]
        sections["fold_aggregates"].append(fold_aggregates(run_folds))
        per_fold: dict[str, Any] = {}
        for number, metrics in run_folds:
            if metrics:
                per_fold.update(flatten(metrics, f"folds.{number}.metrics"))
        sections["folds"].append(per_fold)
    rows: list[ComparisonRow] = []
    size = 0
    for section, columns in sections.items():
        keys = sorted({k for column in columns for k in column}, key=_row_order)
        for key in keys:
            values = [column.get(key) for column in columns]
            present = [key in column for column in columns]
            seen = [_same(v) for v in values]
            differs = (not all(present) and any(present)) or len(set(seen)) > 1
            rows.append(ComparisonRow(key=key, section=section, values=values, differs=differs))
            size += _ROW_OVERHEAD + len(key) + len(section) + sum(len(v[1]) if v[0] == "j" else 24 for v in seen)
            if max_bytes is not None and size > max_bytes:
                raise _too_large(size, max_bytes)
    headers = [ComparedRun(run_id=r["run_id"], dataset_slug=r["dataset_slug"], status=r["status"],
                           created_at=utc(r["created_at"]), fold_count=r["fold_count"]) for r in runs]
    return RunComparison(runs=headers, rows=rows, differing=sum(r.differs for r in rows), total=len(rows))


# -------------------------------------------------------------------------------------- as CSV
def csv_header(table: RunComparison) -> list[str]:
    return ["key", "section", "differs", *(str(r.run_id) for r in table.runs)]


def _cell(value: Any) -> Any:
    """Text as itself (the CSV writer neutralises formula-like text), numbers as numbers, null
    empty, booleans, lists and objects as their JSON."""
    if value is None or isinstance(value, str) or _number(value) is not None:
        return value
    return _ENCODE.encode(value).decode()


def csv_rows(table: RunComparison) -> Iterator[list[Any]]:
    for row in table.rows:
        yield [row.key, row.section, "true" if row.differs else "false", *(_cell(v) for v in row.values)]
