"""The Python client of the Stage1 API and the `stage1` command (docs/client.md).

    from stage1.client import Client, ApiError

Names are loaded on first use, so the command's `--help` (and an import of a submodule) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stage1.client.api import Client, config_from_env
    from stage1.client.errors import ApiError

__all__ = ["ApiError", "Client", "config_from_env"]


def __getattr__(name: str) -> Any:
    if name in ("Client", "config_from_env"):
        from stage1.client import api

        return getattr(api, name)
    if name == "ApiError":
        from stage1.client.errors import ApiError

        return ApiError
    raise AttributeError(f"module 'stage1.client' has no attribute {name!r}")
