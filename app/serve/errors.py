"""``RequestError``: a request the service refuses, with the HTTP status and each bad field and row."""

from __future__ import annotations

from typing import Any

MAX_LISTED = 20


class RequestError(Exception):
    """A request the service refuses: HTTP ``status``, a one-line ``message`` and each bad field/row."""

    def __init__(self, status: int, message: str, problems: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.problems = status, message, problems or []

    def body(self) -> dict[str, Any]:
        return {"error": self.message, "detail": self.problems[:MAX_LISTED]}
