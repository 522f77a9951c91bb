"""Ctrl-C during a fit: the first stops the search and skips the stages left (the best model so far is
saved, the search can be resumed with ``automl fit --resume``); the second stops at once.

The search is stopped the way Tune stops on its own Ctrl-C handler, which leaves it resumable (a
``Stopper.stop_all`` would mark the searcher finished, and a resumed search would add no trial); its
advice to call ``Tuner.restore`` is left out of the log.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator

_requested = threading.Event()
_TUNE_ADVICE = ("Tuner.restore", "Stop signal received")


class FitInterrupted(Exception):  # noqa: N818 - an outcome the CLI reports, not a failure
    """The fit stopped early on Ctrl-C; ``str()`` says what was saved and how to resume."""


def requested() -> bool:
    """Whether Ctrl-C was pressed since ``catching_sigint`` began."""
    return _requested.is_set()


def request() -> None:
    """What the first Ctrl-C does: remember it, and end a running Tune search (Tune's ``tune.run``
    handles SIGUSR1 as it handles its own Ctrl-C while it runs)."""
    _requested.set()
    if signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, signal.SIG_IGN, None):
        os.kill(os.getpid(), signal.SIGUSR1)


class _DropTuneAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not any(text in record.getMessage() for text in _TUNE_ADVICE)


@contextlib.contextmanager
def catching_sigint() -> Iterator[None]:
    """First SIGINT: ``request()``; second: ``KeyboardInterrupt`` at once.

    Only the main thread may install signal handlers; elsewhere this changes nothing.
    """
    _requested.clear()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    tune_env = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
    tune_log, advice = logging.getLogger("ray.tune.tune"), _DropTuneAdvice()

    def on_sigint(signum, frame):
        if _requested.is_set():
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        print(
            "Ctrl-C: stopping the search and saving the best model so far (Ctrl-C again stops at once)",
            file=sys.stderr,
            flush=True,
        )
        request()

    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    signal.signal(signal.SIGINT, on_sigint)
    tune_log.addFilter(advice)
    try:
        yield
    finally:
        tune_log.removeFilter(advice)
        signal.signal(signal.SIGINT, previous)
        if tune_env is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = tune_env
