"""Ray job entrypoint for the whole AutoML fit; prints a JSON summary as its last line.

ray job submit --working-dir . -- python jobs/automl.py DATA --target y --time-budget 600 --out runs/a1

Options left out keep the ``search`` section of ``--config`` (or its defaults); endpoints come from the
config file and the environment (``RAY_ADDRESS``, ``AWS_*``, ``MLFLOW_TRACKING_URI``), as for ``automl fit``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the working dir root, for `app`

# Options named after the SearchConfig fields they override (None: keep the config's value).
SEARCH_OPTIONS = (
    "metric",
    "time_budget_s",
    "families",
    "num_samples",
    "max_concurrent_trials",
    "scheduler",
    "search_algorithm",
    "max_rounds",
    "refit",
    "cv_folds",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Search families and hyperparameters on Ray Tune.")
    parser.add_argument("data", nargs="?", help="Parquet/CSV path, directory, glob or s3:// URI.")
    parser.add_argument("--target", help="Column to predict.")
    parser.add_argument("--task", default=None, choices=["binary", "multiclass", "regression"])
    parser.add_argument("--metric", default=None)
    parser.add_argument("--time-budget", dest="time_budget_s", type=float, default=None)
    parser.add_argument("--families", nargs="*", default=None)
    parser.add_argument("--num-samples", type=int, default=None)
    parser.add_argument("--max-concurrent", dest="max_concurrent_trials", type=int, default=None)
    parser.add_argument("--scheduler", default=None, choices=["asha", "fifo"])
    parser.add_argument("--search", dest="search_algorithm", default=None, choices=["optuna", "random"])
    parser.add_argument("--max-rounds", type=int, default=None)
    parser.add_argument("--refit", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--cv-folds", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("runs/automl"))
    parser.add_argument("--config", type=Path, default=None, help="AppConfig YAML.")
    parser.add_argument("--resume", action="store_true")
    return parser.parse_args(argv)


def search_overrides(args: argparse.Namespace) -> dict:
    """The options that override the config's ``search`` section, by field name."""
    return {name: getattr(args, name) for name in SEARCH_OPTIONS}


def main(argv: list[str] | None = None) -> dict:
    from app.config import AppConfig
    from app.search.api import run_fit
    from app.search.interrupt import FitInterrupted

    args = parse_args(argv)
    cfg = AppConfig.from_yaml(args.config) if args.config else AppConfig.from_dict({})
    if not args.resume and (not args.data or not args.target):
        raise SystemExit("DATA and --target are required unless --resume")
    try:
        result = run_fit(
            args.data,
            target=args.target,
            config=cfg,
            out_dir=args.out,
            task=args.task,
            resume=args.resume,
            **search_overrides(args),
        )
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
        "tracking_uri": result.tracking.get("tracking_uri"),
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
