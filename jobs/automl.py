"""Ray job entrypoint for the whole AutoML fit; prints a JSON summary as its last line.

ray job submit --working-dir . -- python jobs/automl.py DATA --target y --time-budget 600 --out runs/a1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the working dir root, for `app`


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Search families and hyperparameters on Ray Tune.")
    parser.add_argument("data", nargs="?", help="Parquet/CSV path, directory, glob or s3:// URI.")
    parser.add_argument("--target", help="Column to predict.")
    parser.add_argument("--task", default=None, choices=["binary", "multiclass", "regression"])
    parser.add_argument("--metric", default=None)
    parser.add_argument("--time-budget", type=float, default=None)
    parser.add_argument("--families", nargs="*", default=None)
    parser.add_argument("--num-samples", type=int, default=30)
    parser.add_argument("--max-concurrent", type=int, default=None)
    parser.add_argument("--scheduler", default="asha", choices=["asha", "fifo"])
    parser.add_argument("--search", default="optuna", choices=["optuna", "random"])
    parser.add_argument("--max-rounds", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("runs/automl"))
    parser.add_argument("--resume", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    from app.search import AutoMLEngine, RayTuneOptimizer, RayTuneSettings
    from app.search.interrupt import FitInterrupted

    args = parse_args(argv)
    settings = RayTuneSettings(
        num_samples=args.num_samples,
        max_concurrent_trials=args.max_concurrent,
        scheduler=args.scheduler,
        search_algorithm=args.search,
        time_budget_s=args.time_budget,
        metric=args.metric,
        max_rounds=args.max_rounds,
        **({"families": args.families} if args.families else {}),
    )
    engine = AutoMLEngine(RayTuneOptimizer(settings), out_dir=args.out)
    try:
        if args.resume:
            result = engine.resume()
        else:
            if not args.data or not args.target:
                raise SystemExit("DATA and --target are required unless --resume")
            result = engine.fit(args.data, target=args.target, task=args.task)
    except FitInterrupted as exc:  # Ctrl-C: the best model so far is saved
        print(f"interrupted: {exc}", file=sys.stderr)
        raise SystemExit(130) from None
    summary = {
        "model_dir": str(result.model_dir),
        "chosen": result.chosen,
        "metric": result.metric,
        "best_score": result.best_score,
        "ensemble_score": result.ensemble_score,
        "trials": len(result.leaderboard),
        "wall_time_s": result.wall_time_s,
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
