"""Edge types of the walk-forward runs resource (field names fixed by CONTRACT.md)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from stage1_wire.base import Model
from stage1_wire.dataset_versions import SeenVersion
from stage1_wire.names import NAME_PATTERN, ClientTime, Measurement, Slug

FoldNumber = Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]
Bound = Annotated[int, msgspec.Meta(ge=-(2**62), le=2**62)]
Samples = Annotated[int, msgspec.Meta(ge=0, le=2**62)]
ColumnName = Annotated[str, msgspec.Meta(max_length=128)]
ThresholdColumn = Annotated[str, msgspec.Meta(pattern=NAME_PATTERN, max_length=63)]
# A value in an inline prediction row: numbers, or a timestamp as an ISO string.
Cell = int | float | str | bool | None

RunStatus = Literal["PENDING", "RUNNING", "COMPLETED", "FAILED"]
RunSort = Literal[
    "created_at", "-created_at", "started_at", "-started_at", "completed_at", "-completed_at",
    "prediction_measurement", "-prediction_measurement", "status", "-status",
]


class FoldIn(Model, kw_only=True):
    fold_number: FoldNumber
    train_start: Bound | None = None
    train_end: Bound | None = None
    test_start: Bound | None = None
    test_end: Bound | None = None
    samples_train: Samples | None = None
    samples_test: Samples | None = None
    thresholds: dict[str, Any] = msgspec.field(default_factory=dict)
    metrics: dict[str, Any] = msgspec.field(default_factory=dict)


class RunIn(Model, kw_only=True):
    """`POST /api/runs`: the desktop's WalkforwardRecord plus `folds`, and optionally the
    predictions inline, as JSON row objects (`predictions`) or CSV text (`predictions_csv`).

    The dataset is `dataset_id` (a UUID) or `dataset_slug`. `prediction_measurement` defaults to
    `<slug>_wf_<yyyymmddHHMMSS>` (made unique). `threshold_columns` fixes the order of the
    prediction columns after `target`; undeclared extra columns follow in first-seen order."""

    dataset_id: uuid.UUID | None = None
    dataset_slug: Slug | None = None
    run_id: uuid.UUID | None = None
    prediction_measurement: Measurement | None = None
    target_column: ColumnName = ""
    feature_columns: Annotated[list[ColumnName], msgspec.Meta(max_length=10_000)] = msgspec.field(
        default_factory=list)
    threshold_columns: Annotated[list[ThresholdColumn], msgspec.Meta(max_length=256)] | None = None
    walk_config: dict[str, Any] = msgspec.field(default_factory=dict)
    hyperparameters: dict[str, Any] = msgspec.field(default_factory=dict)
    summary_metrics: dict[str, Any] = msgspec.field(default_factory=dict)
    started_at: ClientTime | None = None
    completed_at: ClientTime | None = None
    folds: Annotated[list[FoldIn], msgspec.Meta(max_length=100_000)] = msgspec.field(default_factory=list)
    predictions: list[dict[str, Cell]] | None = None
    predictions_csv: str | None = None
    # Predictions from an uploaded file (POST /api/uploads, kind predictions): the run is RUNNING
    # until the upload's import job ends (202 with `job_id`), then COMPLETED or FAILED.
    upload_id: uuid.UUID | None = None
    # "RUNNING": an incremental run, created without predictions; its folds arrive later in
    # POST /api/runs/{id}/folds and POST /api/runs/{id}/complete ends it. Omitted: the run is whole now.
    status: Literal["RUNNING"] | None = None


class RunCreated(Model, kw_only=True):
    run_id: uuid.UUID
    dataset_id: uuid.UUID
    prediction_measurement: str
    # Rows this request wrote to QuestDB (0 when no predictions were sent inline), counted after
    # QuestDB applied them.
    questdb_rows_written: int
    # Rows the measurement holds now.
    prediction_rows: int
    threshold_columns: list[str]
    status: RunStatus
    # With `upload_id`: the import job to poll (the run is RUNNING until it ends).
    job_id: str | None = None
    poll_url: str | None = None


class Fold(Model, kw_only=True):
    fold_number: int
    train_start: int | None
    train_end: int | None
    test_start: int | None
    test_end: int | None
    samples_train: int | None
    samples_test: int | None
    thresholds: dict[str, Any]
    metrics: dict[str, Any]


class RunSummary(Model, kw_only=True):
    run_id: uuid.UUID
    dataset_id: uuid.UUID
    dataset_slug: str
    prediction_measurement: str
    status: RunStatus
    error: str | None
    started_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    fold_count: int
    target_column: str
    prediction_rows: int
    # Set for runs whose predictions came from an upload (its import job).
    job_id: uuid.UUID | None = None
    upload_id: uuid.UUID | None = None


class RunList(Model):
    runs: list[RunSummary]
    total: int
    limit: int
    offset: int
    # The next page of the same filter and sort, stable under ties and inserts (pass it as `cursor`);
    # None on the last page.
    next_cursor: str | None = None


class RunLinks(Model):
    self: str
    dataset: str
    predictions: str
    simulations: str


class RunDetail(RunSummary, kw_only=True):
    feature_columns: list[str]
    threshold_columns: list[str]
    walk_config: dict[str, Any]
    hyperparameters: dict[str, Any]
    summary_metrics: dict[str, Any]
    folds: list[Fold]
    links: RunLinks
    # Which data it saw: the dataset's version when it was stored, and whether the dataset's content
    # changed since (both null for records stored before dataset versions existed).
    dataset_version: SeenVersion | None = None
    dataset_changed: bool | None = None


class RunDeleted(Model):
    run_id: uuid.UUID
    deleted: bool
    prediction_measurement: str
    simulations_deleted: int
    questdb_table_dropped: bool
    # Set when the QuestDB table could not be dropped (nothing references it any more).
    questdb_error: str | None = None


class Predictions(Model):
    """A page of predictions: `timestamp, bar_index, fold_number, prediction, target`, then one
    column per threshold (`threshold_columns` of the run)."""

    run_id: uuid.UUID
    prediction_measurement: str
    columns: list[str]
    predictions: list[dict[str, Any]]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class DownsampledPredictions(Predictions, kw_only=True):
    """`Predictions` read with `max_points=N`: at most N buckets, every column its bucket's last value."""

    downsampled: bool = True
    bucket_seconds: int | None = None
    max_points: int


# ---- incremental runs (POST /api/runs with status RUNNING, then folds, then complete)
class FoldsIn(Model, kw_only=True):
    """`POST /api/runs/{run_id}/folds`: one or more completed folds of a RUNNING run and their
    predictions (JSON rows or CSV text, each row's `fold_number` one of `folds`). Each fold becomes
    visible only once its predictions are applied in QuestDB; a fold already stored is accepted
    again only with the same data (200), otherwise 409."""

    folds: Annotated[list[FoldIn], msgspec.Meta(min_length=1, max_length=1000)]
    predictions: list[dict[str, Cell]] | None = None
    predictions_csv: str | None = None


class FoldsAdded(Model, kw_only=True):
    run_id: uuid.UUID
    status: RunStatus
    # Folds this request stored, and folds it re-sent unchanged (nothing written again).
    added: list[int]
    unchanged: list[int]
    fold_count: int
    questdb_rows_written: int
    prediction_rows: int


class RunComplete(Model, kw_only=True):
    """`POST /api/runs/{run_id}/complete`: the run's final summary; RUNNING → COMPLETED."""

    summary_metrics: dict[str, Any] | None = None
    completed_at: ClientTime | None = None
