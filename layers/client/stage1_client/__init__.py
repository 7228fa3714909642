"""The Python client of the Stage1 API and the `stage1` command (docs/client.md).

    from stage1_client import Client, ApiError

Names are loaded on first use, so the command's `--help` (and an import of a submodule) stays cheap.
The request and response bodies are `stage1_wire`'s Structs (installed with this package).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stage1_client.api import Client
    from stage1_client.config import config_from_env
    from stage1_client.errors import ApiError
    from stage1_client.retry import RetryPolicy

__all__ = ["ApiError", "Client", "RetryPolicy", "config_from_env"]


def __getattr__(name: str) -> Any:
    if name == "Client":
        from stage1_client.api import Client

        return Client
    if name == "config_from_env":
        from stage1_client.config import config_from_env

        return config_from_env
    if name == "ApiError":
        from stage1_client.errors import ApiError

        return ApiError
    if name == "RetryPolicy":
        from stage1_client.retry import RetryPolicy

        return RetryPolicy
    raise AttributeError(f"module 'stage1_client' has no attribute {name!r}")
