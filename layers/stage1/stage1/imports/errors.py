"""Why an import failed, in words a client can act on (with `details` for the machine)."""

from __future__ import annotations

from typing import Any


class ImportFailed(Exception):  # noqa: N818 - the name says what happened
    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
