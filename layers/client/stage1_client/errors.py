"""The one exception the client raises: the service's error envelope, or why there was none."""

from __future__ import annotations

from typing import Any

# Exit codes of the `stage1` command, one per class of failure (docs/client.md, "Exit codes").
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_AUTH, EXIT_NOT_FOUND, EXIT_SERVER, EXIT_TIMEOUT = 0, 1, 2, 3, 4, 5, 6
EXIT_INTERRUPTED = 130


class ApiError(Exception):
    """A request that did not succeed.

    `status` is the HTTP status (0 when no response arrived: connection refused, timeout);
    `message` and `details` come from the envelope `{"error": ..., "details": ...}` when the
    service sent one, else from the response text or the transport error."""

    def __init__(self, status: int, message: str, details: dict[str, Any] | None = None, *,
                 method: str = "", url: str = "", headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details
        self.method = method
        self.url = url
        self.headers = headers or {}

    @property
    def exit_code(self) -> int:
        """1 another 4xx (the request was refused as sent) or a job that did not complete; 3 401/403
        (token missing, wrong or lacking the scope); 4 404; 5 a 5xx or no answer at all (the service
        or the network); 6 gave up waiting for a job."""
        if self.status in (401, 403):
            return EXIT_AUTH
        if self.status == 404:
            return EXIT_NOT_FOUND
        if self.status >= 500:
            return EXIT_SERVER
        if self.status == 0:
            if self.message.startswith("gave up waiting"):
                return EXIT_TIMEOUT
            if self.message.startswith("cannot reach"):
                return EXIT_SERVER
        return EXIT_ERROR

    def __str__(self) -> str:
        return self.one_line()

    def one_line(self, max_details: int = 300) -> str:
        """`404 run not found {"run_id": "..."}`: what the CLI prints."""
        import json  # here, not at module level: `stage1 --help` imports this module for its exit codes

        head = f"{self.status} {self.message}" if self.status else self.message
        if self.details:
            text = json.dumps(self.details, separators=(", ", ": "), default=str)
            head += " " + (text if len(text) <= max_details else text[: max_details - 1] + "…")
        return head.replace("\n", " ")

    @classmethod
    def from_response(cls, status: int, body: bytes, *, method: str = "", url: str = "",
                      headers: dict[str, str] | None = None, reason: str = "") -> ApiError:
        import json

        message, details = "", None
        try:
            doc = json.loads(body) if body else None
        except ValueError:
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get("error"), str):
            message = doc["error"]
            raw = doc.get("details")
            details = raw if isinstance(raw, dict) else ({"details": raw} if raw is not None else None)
        elif isinstance(doc, dict) and isinstance(doc.get("message"), str):  # API Gateway's own answers
            message = doc["message"]
        else:
            text = body.decode("utf-8", "replace").strip().splitlines()
            message = (text[0][:200] if text else "") or reason or "request failed"
        return cls(status, message, details, method=method, url=url, headers=headers)
