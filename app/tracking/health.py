"""Is the tracking server there? Its health check, and which errors mean it went away (the tracker then
keeps the run offline under ``RUN_DIR/mlruns-pending/``)."""

from __future__ import annotations

import urllib.request

_UNREACHABLE_HINTS = (
    "Max retries exceeded",
    "Failed to establish a new connection",
    "Connection refused",
    "Connection aborted",
    "RemoteDisconnected",
    "timed out",
    "timeout exception",
    "Could not connect to the endpoint URL",
)


class TrackingOfflineWarning(UserWarning):
    """The tracking server could not be reached; the run is being kept in ``RUN_DIR/mlruns-pending/``."""


class TrackingUnavailableError(RuntimeError):
    """An operation that needs the tracking server (sync, registry) could not reach it."""


def server_answers(uri: str, *, timeout_s: float) -> bool:
    """Whether the server at ``uri`` answers ``GET /health`` within ``timeout_s`` (local stores: always)."""
    if not uri.startswith(("http://", "https://")):
        return True
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s):
            return True
    except Exception:  # noqa: BLE001 - refused, timed out, DNS, HTTP error: all mean "not usable"
        return False


def is_unreachable(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an exception it was raised from) means the server cannot be reached."""
    import requests

    while exc is not None:
        if isinstance(
            exc,
            ConnectionError
            | TimeoutError
            | requests.exceptions.ConnectionError
            | requests.exceptions.Timeout,
        ):
            return True
        if any(hint in str(exc) for hint in _UNREACHABLE_HINTS):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
