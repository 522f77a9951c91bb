"""The deployment guide's example 1: distributed hyperparameter optimisation with Ray Tune.

    python examples/guide_example1.py                # the guide's settings, scaled to this machine
    python examples/guide_example1.py --small        # a quick run (the test uses this)

Set RAY_ADDRESS (e.g. ray://ray-head:10001) to run it on a cluster instead of a local Ray.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.data.synthetic import make_frame  # noqa: E402
from app.search import AutoMLEngine, RayTuneOptimizer, RayTuneSettings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--out", default="runs/guide_example1")
    args = parser.parse_args()

    frame = make_frame(2_000 if args.small else 50_000, task="binary", seed=1)
    X_train, y_train = frame.drop(columns=["y"]), frame["y"]

    # Configure Ray Tune
    ray_settings = RayTuneSettings(
        num_cpus=-1,  # use all available CPUs
        num_gpus=0,  # the guide's 8 GPUs, on a machine that has them
        ray_address=os.environ.get("RAY_ADDRESS"),  # connect to a Ray cluster when set
        num_samples=6 if args.small else 100,
        max_concurrent_trials=2 if args.small else None,
        scheduler="asha",  # aggressive early stopping
        search_algorithm="optuna",  # TPE
        max_rounds=50 if args.small else 300,
        time_budget_s=None if args.small else 600,
    )

    # Create optimizer
    optimizer = RayTuneOptimizer(settings=ray_settings)

    # Create engine with Ray optimizer
    engine = AutoMLEngine(optimizer=optimizer, out_dir=args.out)

    # Run optimization - distributed across the cluster
    result = engine.fit(X_train, y_train)
    print(f"best {result.metric}: {result.best_score:.4f} ({result.chosen}); model in {result.model_dir}")


if __name__ == "__main__":
    main()
