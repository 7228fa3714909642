"""The one way to run blocking work (a psycopg query, an S3 call) off the event loop."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def in_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run a blocking call in a worker thread, from an `async def` handler.

    Why not `sync_to_thread=True` for handlers annotated `-> Response[...]`: Litestar 2 calls
    `on_registration` again for every handler already on a path when another method joins that
    path (issue #4738 of the framework, fixed in v3 only), which wraps a sync_to_thread handler twice;
    the data-returning path hides that (it awaits the leftover coroutine), the Response path does
    not. Handlers that return a Response are therefore async and offload here."""
    import anyio.to_thread

    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))
