"""Common harness for benchmarks: timing, peak memory, and the closing JSON line.

Every benchmark measures the project's path and a baseline in the same run and ends its output
with ``emit(...)``: one JSON object whose ``ratio`` is project ÷ baseline (higher is better).
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any


def timed(fn: Callable[[], Any], *, repeat: int = 3, warmup: int = 1) -> tuple[float, Any]:
    """Median wall seconds of ``fn`` over ``repeat`` runs after ``warmup`` runs, and its last result."""
    result = None
    for _ in range(warmup):
        result = fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def report(label: str, **figures: Any) -> None:
    """One human-readable line of figures."""
    parts = [f"{k}={v:,.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()]
    print(f"{label:<40} " + "  ".join(parts), flush=True)


def emit(name: str, *, ratio: float, **figures: Any) -> None:
    """The benchmark's last line: one JSON object with its figures and ``ratio``."""
    record = _finite({"bench": name, **figures, "ratio": round(ratio, 4)})
    # Strict JSON (jq, JSON.parse): a figure that could not be measured (NaN, inf) is null, not NaN.
    print(json.dumps(record, default=float, allow_nan=False), flush=True)
    sys.stdout.flush()


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalars
        return _finite(value.item())
    return value


class PeakMemory:
    """Peak memory of a process and of its process tree (Linux ``/proc``), sampled every ``every`` s on a
    thread: ``root_bytes`` is the process's own high-water mark (``VmHWM``), ``tree_bytes`` the largest
    sum of proportional set sizes (``Pss``: pages shared between processes, Ray's object store among
    them, counted once) over the process and its descendants (a local Ray's raylet and workers)."""

    def __init__(self, pid: int, *, every: float = 0.5) -> None:
        import threading

        self.pid, self.every = pid, every
        self.root_bytes = self.tree_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.root_bytes = max(self.root_bytes, _status_kb(self.pid, "VmHWM") * 1024)
            tree = sum(_pss_kb(p) for p in _descendants(self.pid))
            self.tree_bytes = max(self.tree_bytes, tree * 1024)
            self._stop.wait(self.every)


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    import os

    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def _status_kb(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
