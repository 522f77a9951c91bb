"""Ctrl-C during a fit: the first stops the search and skips the stages left (the best model so far is
saved, the search can be resumed); the second stops at once. Replaces Tune's own handler, whose message
points at ``Tuner.restore`` rather than ``automl fit --resume``."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator

from ray.tune import Stopper

_requested = threading.Event()


class FitInterrupted(Exception):  # noqa: N818 - an outcome the CLI reports, not a failure
    """The fit stopped early on Ctrl-C; ``str()`` says what was saved and how to resume."""


class InterruptStopper(Stopper):
    """Ends the whole search once Ctrl-C was pressed; holds no state, so Tune can pickle it."""

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return _requested.is_set()


def requested() -> bool:
    """Whether Ctrl-C was pressed since ``catching_sigint`` began."""
    return _requested.is_set()


def request() -> None:
    """What the first Ctrl-C does (also for tests and embedding code)."""
    _requested.set()


@contextlib.contextmanager
def catching_sigint() -> Iterator[None]:
    """First SIGINT: ``requested()`` turns True; second: ``KeyboardInterrupt`` at once.

    Only the main thread may install signal handlers; elsewhere this changes nothing.
    """
    _requested.clear()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    tune_env = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")

    def on_sigint(signum, frame):
        if _requested.is_set():
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        _requested.set()
        print(
            "Ctrl-C: stopping the search and saving the best model so far (Ctrl-C again stops at once)",
            file=sys.stderr,
            flush=True,
        )

    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if tune_env is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = tune_env
