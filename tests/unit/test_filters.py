"""The filter parser and the ranking alone (stage1.core.filters, stage1.core.ranking): no user text
reaches the SQL text, every value and key is a bind parameter, errors name position and token.
Their meaning against real rows is tests/integration/test_run_search.py."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from stage1.core.errors import BadRequest
from stage1.core.filters import MAX_DEPTH, Binds, Column, Fields, parse_filter
from stage1.core.ranking import after_cursor, encode_cursor, ranking

FIELDS = Fields(
    columns={"status": Column("r.status", "text"), "rows": Column("r.prediction_rows", "number"),
             "created_at": Column("r.created_at", "time"),
             "started_at": Column("r.started_at", "time", nullable=True)},
    documents={"summary_metrics": "r.summary_metrics"},
    folds="(select {agg}({value}) from walkforward_folds f where f.run_id = r.run_id)",
    id_column="r.run_id",
)
_PLACEHOLDER = re.compile(r"%\((flt|cur)_\d+\)s")


def _sql(text: str) -> tuple[str, dict]:
    binds = Binds()
    return parse_filter(FIELDS, text, binds), binds.params


def test_values_and_keys_are_bind_parameters_only():
    sql, params = _sql("summary_metrics.sharpe_x9 > 1.5 and status in ('a''b', 'ZZTOP') "
                       "or summary_metrics.label like 'q%' and folds.metrics.acc.mean >= 0.5")
    stripped = _PLACEHOLDER.sub("", sql)
    for user_text in ("sharpe_x9", "a'b", "ZZTOP", "q%", "acc", "1.5", "0.5", "label"):
        assert user_text not in stripped, user_text
    assert "%" not in stripped  # no stray placeholder or pattern in the text
    assert set(params.values()) >= {"sharpe_x9", "a'b", "ZZTOP", "q%", "acc", Decimal("1.5"), Decimal("0.5")}


def test_json_numbers_are_cast_only_after_their_type_is_checked():
    sql, _ = _sql("summary_metrics.sharpe > 1")
    assert "jsonb_typeof" in sql and sql.index("jsonb_typeof") < sql.index("::numeric")
    eq, params = _sql("summary_metrics.depth = 6")
    assert "@>" in eq and '{"depth": 6}' in params.values()


def test_keywords_are_case_insensitive_and_precedence_is_and_over_or():
    sql, _ = _sql("status = 'a' OR status = 'b' AnD rows > 1")
    assert sql.startswith("(") and " or (" in sql


@pytest.mark.parametrize(("text", "position", "token"), [
    ("status = 'x", 9, "'x"),
    ("nope = 1", 0, "nope"),
    ("status ! 'x'", 7, "!"),
    ("status = 'x' status", 13, "status"),
    ("rows > 'x'", 7, "'x'"),
    ("started_at < 'soon'", 13, "'soon'"),
    ("not " * (MAX_DEPTH + 1) + "status = 'x'", 4 * MAX_DEPTH, "not"),
    ("summary_metrics.k like 'a\\'", 23, "'a\\'"),
    ("status = 'a\x00'", 11, "\\x00"),
    ("rows > 1e400", 7, "1e400"),
])
def test_errors_name_position_and_token(text, position, token):
    with pytest.raises(BadRequest) as err:
        _sql(text)
    assert err.value.details["position"] == position and err.value.details["token"] == token, err.value.details
    assert f"position {position}" in err.value.message


def test_sort_terms_and_cursor_round_trip():
    binds = Binds()
    rank = ranking(FIELDS, "-summary_metrics.sharpe", binds, legacy={})
    assert [t.kind for t in rank.terms] == ["number", "text"] and rank.order_by.endswith("r.run_id")
    assert "nulls last" in rank.order_by and "sharpe" not in rank.order_by
    row = {"_k0": Decimal("1.5"), "_k1": None}
    cursor = encode_cursor(rank, None, row, "00000000-0000-0000-0000-000000000001")
    after = Binds("cur")
    condition = after_cursor(rank, None, cursor, after)
    assert Decimal("1.5") in after.params.values() and "is null" in condition
    with pytest.raises(BadRequest):  # bound to its filter
        after_cursor(rank, "status = 'x'", cursor, Binds("cur"))
    legacy = ranking(FIELDS, "-created_at", Binds(), legacy={"-created_at": "r.created_at desc"})
    assert legacy.order_by == "r.created_at desc, r.run_id"
