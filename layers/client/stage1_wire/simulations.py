"""Edge types of the simulations resource (field names fixed by CONTRACT.md)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from stage1_wire.base import Model
from stage1_wire.dataset_versions import SeenVersion
from stage1_wire.names import ClientTime

Side = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
SimulationStatus = Literal["PENDING", "RUNNING", "COMPLETED", "FAILED"]
SimulationSort = Literal[
    "created_at", "-created_at", "started_at", "-started_at", "completed_at", "-completed_at",
    "name", "-name", "trade_count", "-trade_count",
]
BucketType = Literal["all", "side", "month"]


class TradeIn(Model, kw_only=True):
    """One trade. `bar_timestamp`: unix time (s/ms/µs/ns by magnitude) or ISO-8601; stored and
    returned as unix seconds. Fields beyond these go in `extra` (kept verbatim)."""

    bar_timestamp: int | str
    side: Side
    pnl: float
    entry_price: float | None = None
    exit_price: float | None = None
    quantity: float | None = None
    return_pct: float | None = None
    extra: dict[str, Any] = msgspec.field(default_factory=dict)


class SimulationIn(Model, kw_only=True):
    """`POST /api/simulations`: the desktop's SimulationRecord plus its trades. `run_id` or
    `dataset_id` (UUID or slug) is required; with a run the dataset is the run's."""

    simulation_id: uuid.UUID | None = None
    run_id: uuid.UUID | None = None
    dataset_id: Annotated[str, msgspec.Meta(max_length=63)] | None = None
    name: Annotated[str, msgspec.Meta(max_length=200)] = ""
    config: dict[str, Any] = msgspec.field(default_factory=dict)
    summary_metrics: dict[str, Any] = msgspec.field(default_factory=dict)
    started_at: ClientTime | None = None
    completed_at: ClientTime | None = None
    trades: Annotated[list[TradeIn], msgspec.Meta(max_length=1_000_000)] = msgspec.field(default_factory=list)
    upload_id: uuid.UUID | None = None
    # Big backtests: the trades of an upload of kind `trades` (POST /api/uploads). The simulation is
    # RUNNING (202) until its import ends and the trades are loaded, then COMPLETED (or FAILED).
    trades_upload_id: uuid.UUID | None = None


class Bucket(Model, kw_only=True):
    """Trade statistics of one group: `all` (key `all`), per `side` (key: the side), per `month`
    (key `YYYY-MM` of `bar_timestamp`, UTC). A win is `pnl > 0`."""

    bucket_type: BucketType
    bucket_key: str
    trade_count: int
    win_count: int
    win_rate: float
    total_pnl: float
    mean_pnl: float
    # Mean of the non-null `return_pct` values; null when none has one.
    mean_return_pct: float | None


class SimulationSummary(Model, kw_only=True):
    simulation_id: uuid.UUID
    run_id: uuid.UUID | None
    dataset_id: uuid.UUID
    dataset_slug: str
    name: str
    status: SimulationStatus
    error: str | None
    trade_count: int
    config: dict[str, Any]
    summary_metrics: dict[str, Any]
    started_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class SimulationList(Model):
    simulations: list[SimulationSummary]
    total: int
    limit: int
    offset: int
    # The next page of the same filter and sort, stable under ties and inserts (pass it as `cursor`);
    # None on the last page.
    next_cursor: str | None = None


class SimulationLinks(Model):
    self: str
    trades: str
    dataset: str
    run: str | None


class SimulationDetail(SimulationSummary, kw_only=True):
    buckets: list[Bucket]
    links: SimulationLinks
    # Which data it saw: the dataset's version when it was stored, and whether the dataset's content
    # changed since (both null for records stored before dataset versions existed).
    dataset_version: SeenVersion | None = None
    dataset_changed: bool | None = None


class Trade(Model, kw_only=True):
    trade_index: int
    bar_timestamp: int
    side: str
    entry_price: float | None
    exit_price: float | None
    quantity: float | None
    pnl: float | None
    return_pct: float | None
    extra: dict[str, Any]


class TradeList(Model):
    simulation_id: uuid.UUID
    trades: list[Trade]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class SimulationDeleted(Model):
    simulation_id: uuid.UUID
    deleted: bool
    trades_deleted: int


class EquityCurve(Model, kw_only=True):
    """The cumulative PnL of a simulation's trades in (`bar_timestamp`, `trade_index`) order.
    Without `max_points` one point per trade: `timestamp, trade_index, pnl, equity`. With it at most N
    buckets of `bucket_seconds`: `timestamp` (bucket start), `equity` (last), `equity_min`,
    `equity_max` (so a drawdown inside a bucket stays visible) and `trades` (trades in the bucket)."""

    simulation_id: uuid.UUID
    columns: list[str]
    points: list[dict[str, Any]]
    total: int
    limit: int
    offset: int
    next_offset: int | None
    downsampled: bool = False
    bucket_seconds: int | None = None
    max_points: int | None = None
