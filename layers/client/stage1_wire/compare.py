"""Edge types of `GET /api/runs/compare`: one table of the runs' keys (docs/resources.md, "Compare runs")."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from stage1_wire.base import Model

# Most runs one comparison takes (the API's contract, issue 13), and fewest.
COMPARE_MAX_RUNS = 50
COMPARE_MIN_RUNS = 2
# Dotted segments below a section a nested JSON value is flattened to; deeper values stay JSON.
COMPARE_MAX_DEPTH = 6

Section = Literal["hyperparameters", "walk_config", "summary_metrics", "fold_aggregates", "folds"]


class ComparedRun(Model):
    """A column's header: which run it is."""

    run_id: uuid.UUID
    dataset_slug: str
    status: str
    created_at: datetime
    fold_count: int


class ComparisonRow(Model):
    """One key across the runs: `values[i]` is the value of `runs[i]` (null where that run lacks
    the key); `differs` is true when not every run has the same value (a missing key is a value)."""

    key: str
    section: Section
    values: list[Any]
    differs: bool


class RunComparison(Model):
    runs: list[ComparedRun]
    rows: list[ComparisonRow]
    # How many rows differ, and how many keys there are in all.
    differing: int
    total: int

