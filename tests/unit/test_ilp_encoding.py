import pytest

from stage1.core.ilp import encode_row


def test_types_nulls_and_timestamp():
    line = encode_row("preds", {"fold_number": 2, "prediction": 0.25, "target": None, "ok": True,
                                "note": 'a "q" \\ b', "nan": float("nan")}, 1_704_067_200_000_000)
    assert line == 'preds fold_number=2i,prediction=0.25,ok=t,note="a \\"q\\" \\\\ b" 1704067200000000\n'


def test_symbols_and_escaping_of_names():
    line = encode_row("t", {"x": 1.0}, 5, symbols={"side": "long short"})
    assert line == "t,side=long\\ short x=1.0 5\n"


def test_a_row_of_nulls_is_refused():
    with pytest.raises(ValueError):
        encode_row("t", {"x": None}, 1)
