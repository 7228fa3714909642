"""QuestDB table descriptions: the wire types of `stage1_wire.measurements`."""

from __future__ import annotations

from stage1_wire.measurements import (
    Measurement,
    MeasurementColumn,
    MeasurementDetail,
    MeasurementList,
    Partitions,
    WalState,
)

__all__ = ["Measurement", "MeasurementColumn", "MeasurementDetail", "MeasurementList", "Partitions", "WalState"]
