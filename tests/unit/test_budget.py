"""stage1.core.budget: each call's timeout is cut from one request budget."""

from __future__ import annotations

import time

import pytest

from stage1.core.budget import Budget
from stage1.core.errors import ServiceUnavailable


def test_left_is_capped_and_shrinks():
    budget = Budget(10)
    assert budget.left(5) == 5
    assert 9 < budget.left() <= 10
    time.sleep(0.05)
    assert budget.left() < 10


def test_a_spent_budget_is_a_503_naming_the_service():
    budget = Budget(0.2, "questdb")
    with pytest.raises(ServiceUnavailable) as err:
        budget.left(floor=0.5)
    assert err.value.details == {"service": "questdb", "budget_seconds": 0.2}
    assert "time budget is spent" in err.value.message
