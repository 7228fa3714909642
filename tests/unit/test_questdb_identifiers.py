from datetime import UTC, datetime
from pathlib import Path

import pytest

from stage1.core.errors import BadRequest
from stage1.core.questdb import ident, ilp_conf, literal, quote
from stage1.core.settings import load_settings


@pytest.mark.parametrize("name", ["btc25_3", "a", "x" * 63, "0abc", "wf_20250101120000"])
def test_valid_identifiers(name):
    assert ident(name) == name
    assert quote(name) == f'"{name}"'


@pytest.mark.parametrize(
    "name",
    ["", "x" * 64, "BTC", "a-b", "a.b", "a b", 'a"; drop table x; --', "a'b", "ä", "a\nb", None, 3],
)
def test_invalid_identifiers_are_400(name):
    with pytest.raises(BadRequest) as info:
        ident(name, "measurement")
    assert info.value.status_code == 400
    assert info.value.details["field"] == "measurement"


def test_literal_refuses_strings():
    assert literal(42) == "42"
    assert literal(1.5) == "1.5"
    assert literal(None) == "null"
    assert literal(datetime(2024, 1, 1, tzinfo=UTC)) == "'2024-01-01T00:00:00.000000Z'"
    with pytest.raises(TypeError):
        literal("1; drop table x")  # type: ignore[arg-type]


def test_ilp_conf_from_settings():
    settings = load_settings({"STAGE1_QDB_HTTP_URL": "http://127.0.0.1:9000", "STAGE1_QDB_USER": "u",
                              "STAGE1_QDB_PASSWORD": "p"}, Path("/nonexistent"))
    conf = ilp_conf(settings, auto_flush="off")
    assert conf == "http::addr=127.0.0.1:9000;username=u;password=p;auto_flush=off;"
