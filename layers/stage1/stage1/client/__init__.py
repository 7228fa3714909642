"""The Python client of the Stage1 API and the `stage1` command (docs/client.md).

    from stage1.client import Client, ApiError
"""

from stage1.client.api import Client, config_from_env
from stage1.client.errors import ApiError

__all__ = ["ApiError", "Client", "config_from_env"]
