"""Process-wide objects created on first use: pools and clients that a warm Lambda (or the local
gateway) reuses across requests, and that a cold start never pays for unless it needs them."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Lazy(Generic[T]):
    """`get = Lazy(factory)`: `get()` builds the object once (thread-safe), then returns it;
    `get.reset()` forgets it and returns the old one (to close it, or for tests)."""

    def __init__(self, factory: Callable[[], T]) -> None:
        functools.update_wrapper(self, factory)
        self._factory = factory
        self._lock = threading.Lock()
        self._value: list[T] = []

    def __call__(self) -> T:
        if not self._value:
            with self._lock:
                if not self._value:
                    self._value.append(self._factory())
        return self._value[0]

    def reset(self) -> T | None:
        with self._lock:
            return self._value.pop() if self._value else None


def lazy(factory: Callable[[], T]) -> Lazy[T]:
    return Lazy(factory)
