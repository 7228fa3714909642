"""The rules of the compare table (stage1.runs.compare) without a database: run_ids bounds,
flattening depth, `differs` (numbers by value, booleans apart, a missing key differs), CSV cells."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from stage1.core.csvtext import csv_lines
from stage1.core.errors import BadRequest
from stage1.runs import compare
from stage1_wire.compare import COMPARE_MAX_DEPTH


def _run(**sections):
    return {"run_id": uuid.uuid4(), "dataset_slug": "ds", "status": "COMPLETED",
            "created_at": datetime(2024, 1, 1, tzinfo=UTC), "fold_count": 0,
            "hyperparameters": {}, "walk_config": {}, "summary_metrics": {}, **sections}


def _table(*runs, folds=None):
    return compare.build_table(list(runs), folds or {r["run_id"]: [] for r in runs})


def test_run_ids_bounds():
    ids = [str(uuid.uuid4()) for _ in range(51)]
    with pytest.raises(BadRequest, match="at most 50"):
        compare.parse_run_ids(",".join(ids))
    assert len(compare.parse_run_ids(",".join(ids[:50]))) == 50
    with pytest.raises(BadRequest, match="repeat"):
        compare.parse_run_ids(f"{ids[0]},{ids[0].replace('-', '')}")  # one UUID, two spellings
    with pytest.raises(BadRequest, match="not UUIDs") as exc:
        compare.parse_run_ids(f"{ids[0]},1 or 1=1")
    assert exc.value.details["invalid"] == ["1 or 1=1"]
    with pytest.raises(BadRequest, match="at least 2"):
        compare.parse_run_ids(ids[0])


def test_differs_compares_numbers_as_numbers_and_keeps_booleans_apart():
    rows = {r.key: r for r in _table(
        _run(hyperparameters={"a": 1, "b": True, "c": "x", "d": None, "e": [1, 2]}),
        _run(hyperparameters={"a": 1.0, "b": 1, "c": "x", "e": [1, 2]})).rows}
    assert not rows["hyperparameters.a"].differs  # 1 == 1.0
    assert rows["hyperparameters.b"].differs  # true is not 1
    assert not rows["hyperparameters.c"].differs
    assert rows["hyperparameters.d"].differs and rows["hyperparameters.d"].values == [None, None]  # null vs missing
    assert not rows["hyperparameters.e"].differs and rows["hyperparameters.e"].values == [[1, 2], [1, 2]]


def test_flattening_stops_at_the_depth_limit():
    deep: dict = {"leaf": 1}
    for _ in range(COMPARE_MAX_DEPTH + 3):
        deep = {"k": deep}
    keys = [r.key for r in _table(_run(walk_config=deep), _run()).rows]
    assert len(keys) == 1
    assert keys[0] == "walk_config" + ".k" * COMPARE_MAX_DEPTH  # the rest is one JSON value
    assert [r.key for r in _table(_run(walk_config={"e": {}}), _run()).rows] == ["walk_config.e"]


def test_fold_aggregates_skip_non_numbers():
    a, b = _run(), _run()
    folds = {a["run_id"]: [(0, {"auc": 0.5, "tag": "x", "ok": True}), (1, {"auc": 0.7})], b["run_id"]: []}
    rows = {r.key: r.values for r in _table(a, b, folds=folds).rows}
    assert rows["folds.metrics.auc.mean"][0] == pytest.approx(0.6)
    assert rows["folds.metrics.auc.min"] == [0.5, None] and rows["folds.metrics.auc.max"] == [0.7, None]
    assert "folds.metrics.tag.mean" not in rows and "folds.metrics.ok.mean" not in rows
    assert rows["folds.0.metrics.tag"] == ["x", None] and rows["folds.1.metrics.auc"] == [0.7, None]
    order = [r.key for r in _table(a, b, folds={a["run_id"]: [(2, {"m": 1}), (10, {"m": 1})], b["run_id"]: []}).rows]
    assert order.index("folds.2.metrics.m") < order.index("folds.10.metrics.m")  # by number, not text


def test_csv_cells_are_neutralised():
    table = _table(_run(summary_metrics={"note": "=HYPERLINK(\"x\")", "n": -1.5, "ok": False, "l": [1]}),
                   _run(summary_metrics={"note": "@SUM(1)", "n": 2}))
    text = b"".join(csv_lines(compare.csv_header(table), compare.csv_rows(table))).decode()
    assert "'=HYPERLINK" in text and "'@SUM(1)" in text
    assert "summary_metrics.n,summary_metrics,true,-1.5,2" in text  # a negative number stays a number
    assert "summary_metrics.ok,summary_metrics,true,false," in text
    assert 'summary_metrics.l,summary_metrics,true,[1],' in text


def test_the_table_stops_at_the_byte_cap():
    from stage1.core.errors import PayloadTooLarge

    runs = [_run(summary_metrics={f"k{i}": "v" * 50 for i in range(200)}) for _ in range(3)]
    assert len(_table(*runs).rows) == 200
    with pytest.raises(PayloadTooLarge) as exc:
        compare.build_table(runs, {r["run_id"]: [] for r in runs}, max_bytes=10_000)
    assert exc.value.details["max_bytes"] == 10_000
    import msgspec

    whole = len(msgspec.json.encode(_table(*runs)))
    compare.build_table(runs, {r["run_id"]: [] for r in runs}, max_bytes=whole)  # the count is not above the JSON
