"""`encode_row` against the ILP rules QuestDB's own clients follow (c-questdb-client
`must_escape_unquoted` / `must_escape_quoted`): a backslash before each special byte. The old
encoder did not escape a backslash in names or SYMBOL values and dropped line breaks silently."""

import pytest

from stage1.core.ilp import encode_row, escape_name


def test_types_nulls_and_timestamp():
    line = encode_row("preds", {"fold_number": 2, "prediction": 0.25, "target": None, "ok": True,
                                "note": 'a "q" \\ b', "nan": float("nan")}, 1_704_067_200_000_000)
    assert line == 'preds fold_number=2i,prediction=0.25,ok=t,note="a \\"q\\" \\\\ b" 1704067200000000\n'


def test_symbols_and_escaping_of_names():
    line = encode_row("t", {"x": 1.0}, 5, symbols={"side": "long short"})
    assert line == "t,side=long\\ short x=1.0 5\n"


@pytest.mark.parametrize(("raw", "escaped"), [
    ("a b", "a\\ b"), ("a,b", "a\\,b"), ("a=b", "a\\=b"), ("a\\b", "a\\\\b"), ("a\nb", "a\\\nb"),
    ("a\rb", "a\\\rb"), ('a"b', 'a"b'), ("\\", "\\\\"), ("x\\ y", "x\\\\\\ y"),
])
def test_unquoted_rules_for_table_tag_and_column_names_and_symbol_values(raw, escaped):
    assert escape_name(raw) == escaped
    line = encode_row(raw, {raw: 1.0}, 7, symbols={raw: raw})
    assert line == f"{escaped},{escaped}={escaped} {escaped}=1.0 7\n"


@pytest.mark.parametrize(("raw", "escaped"), [
    ('say "hi"', 'say \\"hi\\"'), ("C:\\dir", "C:\\\\dir"), ("two\nlines", "two\\\nlines"), ("cr\r", "cr\\\r"),
    ("a, b = c", "a, b = c"), ("end\\", "end\\\\"),
])
def test_quoted_rules_for_string_fields(raw, escaped):
    assert encode_row("t", {"s": raw}, 1) == f't s="{escaped}" 1\n'


def test_every_line_is_one_line():
    line = encode_row("t\n", {"s": "a\nb\r\nc"}, 1, symbols={"k\n": "v\n"})
    # Every line break in the data is escaped: splitting on unescaped newlines gives one line.
    assert line.count("\n") - line.count("\\\n") == 1 and line.endswith(" 1\n")


def test_integers_must_fit_a_long_and_a_row_of_nulls_is_refused():
    assert encode_row("t", {"n": 2**63 - 1}, 1) == f"t n={2**63 - 1}i 1\n"
    for bad in (2**63, -(2**63)):  # -2^63 is QuestDB's LONG null
        with pytest.raises(ValueError, match="64-bit"):
            encode_row("t", {"n": bad}, 1)
    with pytest.raises(ValueError):
        encode_row("t", {"x": None}, 1)
