"""Edge types of the datasets resource: the wire types of `stage1_wire.datasets` (CONTRACT.md)."""

from __future__ import annotations

from stage1_wire.datasets import (
    Count,
    Dataset,
    DatasetDeleted,
    DatasetIn,
    DatasetLinks,
    DatasetList,
    DatasetSort,
    Label,
    QuestDBState,
    Rows,
    TableState,
)

__all__ = [
    "Count",
    "Dataset",
    "DatasetDeleted",
    "DatasetIn",
    "DatasetLinks",
    "DatasetList",
    "DatasetSort",
    "Label",
    "QuestDBState",
    "Rows",
    "TableState",
]
