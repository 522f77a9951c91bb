"""``python -m app._reaper DRIVER_PID``: while the driver runs, note every process it has started (Ray's
GCS, raylet, agents, workers); once it is gone, kill those still running (each matched on its start
time, so that a reused pid is never touched). Linux only (``/proc``); elsewhere it returns at once.

Reads ``/proc`` itself: psutil is only importable here after ``import ray`` (Ray vendors it), which
would cost this small process a second and a hundred megabytes.
"""

from __future__ import annotations

import os
import signal
import sys
import time

POLL_S = 0.5


def _stat(pid: int) -> tuple[int, int] | None:
    """``(parent pid, start time in clock ticks)`` of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), int(fields[19])


def descendants(pid: int) -> dict[int, int]:
    """Every process below ``pid``: ``{pid: start time}``."""
    children: dict[int, list[tuple[int, int]]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (stat := _stat(int(name))) is not None:
            children.setdefault(stat[0], []).append((int(name), stat[1]))
    found, queue = {}, [pid]
    while queue:
        for child, started in children.get(queue.pop(), []):
            if child not in found:
                found[child] = started
                queue.append(child)
    return found


def main(argv: list[str]) -> None:
    driver = int(argv[0])
    if not os.path.isdir("/proc"):
        return
    os.setpgrp()  # outlive a signal sent to the driver's process group long enough to clean up
    me = os.getpid()
    known: dict[int, int] = {}
    while os.getppid() == driver:
        # Ray's agents start after ray.init returns and are reparented once the raylet dies: keep what
        # was seen while the driver ran.
        known.update({p: t for p, t in descendants(driver).items() if p != me})
        time.sleep(POLL_S)
    for pid, started in known.items():
        stat = _stat(pid)
        if stat is not None and stat[1] == started:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                continue


if __name__ == "__main__":
    main(sys.argv[1:])
