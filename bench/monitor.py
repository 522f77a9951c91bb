"""Monitoring's cost: serving throughput with the monitor on (rows sampled at the default rate, sent
in batches to the monitor actor) vs off, same model, client, concurrency and run; and the time of one
drift check over a 100,000-row window of 30 features.

    uv run python bench/monitor.py
Last line: JSON with ``ratio`` (1-row requests/s with monitoring ÷ without), ``ratio_1k``, and
``drift_check_s``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._harness import emit, report  # noqa: E402
from bench.serve import FEATURES, make_model, project  # noqa: E402


def drift_check_seconds(rows: int = 100_000, repeat: int = 3) -> float:
    from app.data.stats import QUANTILES, ColumnProfile, DatasetProfile
    from app.monitor.drift import DriftDetector

    rng = np.random.default_rng(0)
    reference = rng.normal(size=(50_000, len(FEATURES)))
    quantiles = np.quantile(reference, QUANTILES, axis=0)
    columns = {
        name: ColumnProfile(
            name, "numeric", "double", 50_000, 0,
            quantiles={str(q): float(v) for q, v in zip(QUANTILES, quantiles[:, j], strict=True)},
        )
        for j, name in enumerate(FEATURES)
    }  # fmt: skip
    detector = DriftDetector(window_size=rows)
    detector.set_reference_profile(DatasetProfile(num_rows=50_000, columns=columns), FEATURES)
    window = rng.normal(loc=0.1, size=(rows, len(FEATURES)))
    detector.add_rows({name: window[:, j].tolist() for j, name in enumerate(FEATURES)})
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        detector.detect_feature_drift()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--mode", default="proxy", choices=["proxy", "direct"])
    parser.add_argument(
        "--abba", action=argparse.BooleanOptionalAction, default=True, help="Off, on, on, off (else off, on)."
    )
    args = parser.parse_args()
    check_s = drift_check_seconds()
    report("drift check, 100k rows x 30 features", seconds=check_s)
    with tempfile.TemporaryDirectory(prefix="bench-monitor-") as tmp:
        model_dir = make_model(Path(tmp) / "model")
        # Off, on, on, off: a machine whose load drifts during the run shifts both sides alike.
        runs: dict[str, list[dict]] = {"off": [], "on": []}
        for label in ("off", "on", "on", "off")[: 4 if args.abba else 2]:
            figures = project(
                model_dir,
                args.mode,
                args,
                scenarios="1row-miss,1k",
                serve_args={"monitor": {"enabled": label == "on"}},
            )
            runs[label].append(figures)
            for name, fig in figures.items():
                report(f"monitoring {label} {name}", **fig)

    def rps(label: str, scenario: str) -> float:
        return float(np.mean([r[scenario]["rps"] for r in runs[label]]))

    ratio = rps("on", "1row-miss") / rps("off", "1row-miss")
    emit(
        "monitor",
        ratio=ratio,
        ratio_1k=round(rps("on", "1k") / rps("off", "1k"), 4),
        rps_on=round(rps("on", "1row-miss"), 1),
        rps_off=round(rps("off", "1row-miss"), 1),
        drift_check_s=round(check_s, 3),
        mode=args.mode,
    )


if __name__ == "__main__":
    main()
