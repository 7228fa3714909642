"""Edge types of the walk-forward runs resource: the wire types of `stage1_wire.runs` (CONTRACT.md)."""

from __future__ import annotations

from stage1_wire.runs import (
    Bound,
    Cell,
    ColumnName,
    Fold,
    FoldIn,
    FoldNumber,
    Predictions,
    RunCreated,
    RunDeleted,
    RunDetail,
    RunIn,
    RunLinks,
    RunList,
    RunSort,
    RunStatus,
    RunSummary,
    Samples,
    ThresholdColumn,
)

__all__ = [
    "Bound",
    "Cell",
    "ColumnName",
    "Fold",
    "FoldIn",
    "FoldNumber",
    "Predictions",
    "RunCreated",
    "RunDeleted",
    "RunDetail",
    "RunIn",
    "RunLinks",
    "RunList",
    "RunSort",
    "RunStatus",
    "RunSummary",
    "Samples",
    "ThresholdColumn",
]
