"""Pure rules of the issue-3 code: inline prediction parsing, ILP lines, names, paging bounds."""

from datetime import UTC, datetime

import pytest

from stage1.core.errors import BadRequest
from stage1.core.ilp import encode_row
from stage1.core.paging import page_limit
from stage1.core.refs import parse_ref
from stage1.runs import predictions as preds
from stage1.runs.create import _candidates
from stage1.timeseries.client_times import client_time


def test_rows_are_normalised_and_thresholds_ordered():
    batch = preds.from_rows([
        {"timestamp": 1704067200, "fold_number": 0, "prediction": 0.5, "THR_B": 1, "thr_a": None, "target": 1},
        {"timestamp": "2024-01-01T01:00:00Z", "fold_number": 1.0, "prediction": None, "thr_a": True,
         "bar_index": "7"},
    ], ["thr_a"])
    assert batch.extra_columns == ["thr_a", "thr_b"]
    first, second = batch.rows
    assert (first.ts, first.fold_number, first.prediction, first.target, first.extras) == (
        1704067200 * 10**6, 0, 0.5, 1.0, (None, 1.0))
    assert (second.ts, second.fold_number, second.bar_index, second.prediction, second.extras) == (
        (1704067200 + 3600) * 10**6, 1, 7, None, (1.0, None))


def test_timestamp_units_by_magnitude_and_dedup_keys():
    batch = preds.from_csv("timestamp_unix,fold_number,prediction\n"
                           "1704067200,0,1\n1704067200000,0,2\n1704067200000000,1,3\n1704067200000000000,1,4\n", None)
    assert {r.ts for r in batch.rows} == {1704067200 * 10**6}
    assert batch.distinct_keys == 2  # (timestamp, fold_number) is what QuestDB keeps


def test_problems_are_collected_with_row_and_column():
    with pytest.raises(BadRequest) as info:
        preds.from_rows([{"timestamp": "soon", "fold_number": -1, "prediction": "x"}] * 30, None)
    details = info.value.details
    assert details["problem_count"] == 60 and len(details["problems"]) == preds.MAX_PROBLEMS
    assert details["problems"][0] == {"row": 0, "column": "timestamp", "problem": "timestamp not understood",
                                      "value": "soon"}


@pytest.mark.parametrize(("text", "key"), [
    ("fold_number,prediction\n0,1\n", "missing_columns"),
    ("timestamp,prediction\n1,1\n", "missing_columns"),
    ("timestamp,fold_number,prediction,Bad-Col\n1,0,1,1\n", "invalid_columns"),
    ("timestamp,fold_number,prediction,fold_number\n1,0,1,0\n", "duplicate_columns"),
])
def test_header_problems(text, key):
    with pytest.raises(BadRequest) as info:
        preds.from_csv(text, None)
    assert key in info.value.details


def test_nan_is_null_and_infinity_refused():
    batch = preds.from_csv("timestamp,fold_number,prediction,t\n1,0,nan,NaN\n", None)
    assert batch.rows[0].prediction is None and batch.rows[0].extras == (None,)
    with pytest.raises(BadRequest):
        preds.from_csv("timestamp,fold_number,prediction\n1,0,inf\n", None)


def test_ilp_lines():
    batch = preds.from_rows([{"timestamp": 1, "fold_number": 0, "prediction": None, "bar_index": 2, "x": 0.5}], None)
    assert list(preds.lines("p", batch)) == ["p fold_number=0i,bar_index=2i,x=0.5 1000000\n"]
    with pytest.raises(BadRequest):
        list(preds.lines("Bad Name", batch))


def test_run_table_names_fit_questdb_identifiers():
    now = datetime(2026, 11, 23, 14, 5, 9, tzinfo=UTC)
    names = _candidates("btc25_3", now)
    assert names[:2] == ["btc25_3_wf_20261123140509", "btc25_3_wf_20261123140509_2"]
    long = _candidates("s" * 63, now)
    assert all(len(n) <= 63 and n.startswith("s") for n in long) and len(set(long)) == len(long)


def test_refs_times_and_page_bounds():
    assert parse_ref("btc25_3") == ("slug", "btc25_3")
    assert parse_ref("6f1c1b8e-1f39-4b8f-9a4b-2f7a3c0e9d10")[0] == "id"
    for bad in ("BTC", "a-b", "a" * 64, "", "x y"):
        with pytest.raises(BadRequest):
            parse_ref(bad)
    assert client_time(1704067200000, "t") == datetime(2024, 1, 1, tzinfo=UTC)
    assert client_time(datetime(2024, 1, 1, 2), "t") == datetime(2024, 1, 1, 2, tzinfo=UTC)
    assert page_limit(10_000, 6) == 10_000 and page_limit(10_000, 200) == 1_000 and page_limit(5, 10**9) == 1


def test_fast_and_row_paths_agree():
    """Whole-column conversion (the common case) and the row-by-row path give the same batch."""
    text = "timestamp,bar_index,fold_number,prediction,target,thr\n" + "".join(
        f"{1704067200 + i * 3600},{i},{i % 3},{i / 7},{'' if i % 5 == 0 else i % 2},{0.5 if i % 4 else ''}\n"
        for i in range(50))
    fast = preds.from_csv(text, None)
    slow = preds.from_csv(text + "1704067200, 0 ,0,nan,,\n", None)  # spaces and NaN force the row path
    assert slow.rows[:-1] == fast.rows
    assert slow.rows[-1] == preds.PredictionRow(1704067200 * 10**6, 0, 0, None, None, (None,))
    as_json = preds.from_rows([{"timestamp": 1704067200 + i * 3600, "bar_index": i, "fold_number": i % 3,
                                "prediction": i / 7, "target": None if i % 5 == 0 else float(i % 2),
                                "thr": 0.5 if i % 4 else None} for i in range(50)], None)
    assert as_json.rows == fast.rows
    # The formatted lines equal the generic ILP encoder's.
    for row, text_line in zip(fast.rows, preds.lines("p", fast), strict=True):
        fields = {"fold_number": row.fold_number, "bar_index": row.bar_index, "prediction": row.prediction,
                  "target": row.target, "thr": row.extras[0]}
        assert text_line == encode_row("p", fields, row.ts)


def test_the_row_path_stops_after_a_bounded_number_of_problems():
    """A body of bad rows is refused after STOP_AFTER_PROBLEMS problems, not after checking every row
    (1.3M bad rows cost ~26 s of CPU before this bound)."""
    import time

    from stage1.runs import predictions as p

    rows = "\n".join(f"{i},{i},0,notanumber,1" for i in range(200_000))
    started = time.monotonic()
    with pytest.raises(BadRequest) as info:
        p.from_csv("timestamp,bar_index,fold_number,prediction,target\n" + rows, None)
    details = info.value.details
    assert details["stopped_after"] == details["problem_count"] == p.STOP_AFTER_PROBLEMS
    assert len(details["problems"]) == p.MAX_PROBLEMS
    assert time.monotonic() - started < 5
