"""Waiting for a condition in tests and benchmarks: the one home for polling.

Readiness is waited for, never slept for: a fixed sleep is too short on a loaded machine and time wasted on
an idle one, and each hand-written polling loop forgot something else (the last error, the process that
had already died, its output). ``wait_until`` polls a check until it holds, stops at once when the process
it depends on has exited, and says what it waited for, for how long and what went wrong last.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    check: Callable[[], T],
    *,
    timeout_s: float,
    what: str,
    interval_s: float = 0.2,
    proc: subprocess.Popen | None = None,
) -> T:
    """Call ``check`` until it returns a truthy value, and return that value.

    ``check`` runs at least once, and a truthy value it returns is returned even when the call ended past
    the deadline (a slow check is not a failed one).

    Args:
        check: Called with no arguments. A falsy value or an exception means "not yet"; the last
            exception is quoted if the wait times out.
        timeout_s: Seconds to keep trying.
        what: What is waited for, named in the errors (e.g. ``"redis-server"``).
        interval_s: Seconds between the end of one call and the start of the next.
        proc: The process the condition depends on (a server being started, a driver that should get
            somewhere): once it has exited and ``check`` still fails, there is nothing to wait for.

    Returns:
        The first truthy value ``check`` returned.

    Raises:
        RuntimeError: ``proc`` exited before ``check`` succeeded. The message names ``what``, the exit
            code and, when its stdout or stderr were pipes, their last lines.
        TimeoutError: ``check`` had not succeeded after ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while True:
        # Polled before the check: a process that wrote what the check looks for and then exited passes.
        code = None if proc is None else proc.poll()
        try:
            value = check()
        except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
            last_error = exc
        else:
            if value:
                return value
        if proc is not None and code is not None:
            error = "" if last_error is None else f" (last error: {last_error!r})"
            raise RuntimeError(
                f"{what}: the process exited with code {code} first{error}{_output_tail(proc)}"
            )
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{what}: not after {timeout_s:.0f} s (last error: {last_error!r})")
        time.sleep(min(interval_s, left))


def _output_tail(proc: subprocess.Popen) -> str:
    """The end of an exited process's stdout and stderr, for those that were pipes; else ``""``."""
    if proc.stdout is None and proc.stderr is None:
        return ""
    try:
        out, err = proc.communicate(timeout=5)
    except (subprocess.TimeoutExpired, ValueError):  # a grandchild holds the pipe; a pipe already closed
        return ""
    tail = ""
    for name, text, keep in (("stdout", out, 2000), ("stderr", err, 4000)):
        if isinstance(text, bytes):
            text = text.decode(errors="replace")
        if text:
            tail += f"\n{name}:\n{text[-keep:]}"
    return tail
