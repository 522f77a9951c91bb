"""Errors of the data layer: each names the file and column it is about."""

from __future__ import annotations


class DataError(ValueError):
    """Data that cannot be used as it is; ``path`` and ``column`` say where the problem is."""

    def __init__(self, message: str, *, path: str | None = None, column: str | None = None):
        where = ", ".join(
            p for p in (f"file {path}" if path else "", f"column {column!r}" if column else "") if p
        )
        super().__init__(f"{where}: {message}" if where else message)
        self.path = path
        self.column = column
        self.reason = message


class DataTooLargeError(DataError):
    """Data larger than the memory limit configured for bringing it onto one process."""
