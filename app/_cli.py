"""What every ``automl`` command does with an error it expects: one line on stderr, exit code 2."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import NoReturn

import typer

USAGE_ERROR = 2
INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C


def process_started() -> float:
    """When this process started, on ``time.monotonic()``'s clock, when it was started for this command
    (``automl ...``, ``python -m app.cli ...``): a user's time budget counts from the command, its
    interpreter start and imports included (Linux's ``/proc``). Otherwise (the CLI called inside another
    program, a test runner say) and elsewhere: now."""
    import time

    if Path(sys.argv[0]).stem not in ("automl", "cli"):
        return time.monotonic()
    try:
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as f:
            boot = next(float(line.split()[1]) for line in f if line.startswith("btime"))
        age = time.time() - (boot + ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, StopIteration):
        age = 0.0
    return time.monotonic() - max(0.0, min(age, 3600.0))


def end_now(code: int = 0) -> None:
    """End a command whose files are all saved and whose output is printed, at once, when it started a
    local Ray of its own: Ray's graceful shutdown and the interpreter's teardown of everything the command
    imported take seconds that come after the work and that a user's time budget would pay for.
    ``app._reaper`` stops the local Ray's processes, as it does when the command is killed. Returns
    (the process ends as usual) inside another program (a test runner; a ``jobs/`` entry, which prints
    its summary after the command), or with someone else's Ray."""
    from app import cluster

    if Path(sys.argv[0]).name not in ("automl", "cli.py") or not cluster.started_local():
        return
    logging.shutdown()  # the run's log file
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def one_line(message: object) -> str:
    """``message`` with its lines joined by ``; `` (a pydantic or config error lists one per line)."""
    lines = [" ".join(line.split()) for line in str(message).splitlines()]
    return "; ".join(line for line in lines if line)


def fail(message: object, *, code: int = USAGE_ERROR) -> NoReturn:
    """One line on stderr; the exception being handled, if any, with its trace in the run's log file when
    the command got far enough to write one (bad input leaves no file behind)."""
    from app import _console

    log = _console.log_file()
    if sys.exc_info()[0] is not None and log is not None and log.exists():
        logging.getLogger("app.cli").info("error: %s", one_line(message), exc_info=True)
    typer.secho(f"error: {one_line(message)}", err=True, fg=typer.colors.RED)
    if code == INTERRUPTED:
        _exit_at_next_ctrl_c()
    raise typer.Exit(code=code)


def _exit_at_next_ctrl_c() -> None:
    """What the interrupted command saved is on disk: another Ctrl-C while Ray shuts down ends the process
    at once with 130 (a KeyboardInterrupt inside Ray's atexit shutdown can crash the interpreter)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, lambda *_: os._exit(INTERRUPTED))
