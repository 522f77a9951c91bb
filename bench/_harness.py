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
