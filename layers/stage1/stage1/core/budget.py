"""One time budget for a request that calls a backing service several times: each call's timeout
is cut from what is left, so the calls together cannot outlast the budget (and the Lambda)."""

from __future__ import annotations

import time

from stage1.core.errors import ServiceUnavailable


class Budget:
    def __init__(self, seconds: float, service: str = "questdb") -> None:
        self.seconds = seconds
        self.service = service
        self.deadline = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def left(self, cap: float | None = None, *, floor: float = 0.5) -> float:
        """Seconds the next call may take: what is left (at most `cap`); a 503 naming the service
        once less than `floor` is left (a call that short would only time out)."""
        left = self.remaining()
        if left < floor:
            raise ServiceUnavailable(self.service, f"the request's {self.seconds:g} s time budget is spent",
                                     {"budget_seconds": self.seconds})
        return min(cap, left) if cap is not None else left
