"""Edge types of the simulations resource: the wire types of `stage1_wire.simulations`."""

from __future__ import annotations

from stage1_wire.simulations import (
    Bucket,
    BucketType,
    Side,
    SimulationDeleted,
    SimulationDetail,
    SimulationIn,
    SimulationLinks,
    SimulationList,
    SimulationSort,
    SimulationStatus,
    SimulationSummary,
    Trade,
    TradeIn,
    TradeList,
)

__all__ = [
    "Bucket",
    "BucketType",
    "Side",
    "SimulationDeleted",
    "SimulationDetail",
    "SimulationIn",
    "SimulationLinks",
    "SimulationList",
    "SimulationSort",
    "SimulationStatus",
    "SimulationSummary",
    "Trade",
    "TradeIn",
    "TradeList",
]
