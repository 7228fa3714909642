"""Imports' staging names are reserved (stage1.core.questdb.is_staging): every name `staging_name`
makes is recognised, no client-name check accepts one, and the names that only look alike are free."""

from __future__ import annotations

import uuid

import pytest

from stage1.core.errors import BadRequest
from stage1.core.questdb import IDENT_MAX, ident, is_staging
from stage1.imports.core import staging_name
from stage1.timeseries.ownership import check_name
from stage1.timeseries.rollup import view_name


@pytest.mark.parametrize("target", ["t", "btc_1h_ohlcv", "x" * IDENT_MAX, "a__sdeadbeef_", "9lives"])
def test_every_staging_name_is_reserved(target):
    for _ in range(20):
        name = staging_name(target, str(uuid.uuid4()))
        assert is_staging(name) and is_staging(name.upper()) and is_staging(f"public.{name}")
        assert ident(name) == name  # internal code still names it
        with pytest.raises(BadRequest) as refused:
            check_name(name, "prediction_measurement")
        assert refused.value.details == {"field": "prediction_measurement", "value": name}
        assert "staging" in refused.value.message


@pytest.mark.parametrize("name", ["x__sdeadbee", "x__sdeadbeef0", "x__sdeadbeeg", "x_sdeadbeef", "x__sdeadbeef_y",
                                  "x__tdeadbeef", "btc_1h_ohlcv", "s__s"])
def test_look_alikes_are_ordinary_names(name):
    assert not is_staging(name)
    assert check_name(name) == name


def test_rollup_views_are_not_staging_tables():
    """Decided: an hourly rollup (`r1h_` + 32 hex) is derived from committed rows only, so it stays
    readable; its name never ends like a staging table's."""
    for _ in range(200):
        name = view_name(f"t_{uuid.uuid4().hex}")
        assert not is_staging(name)
