"""Ray job entrypoint for the training stage; prints a JSON summary as its last line.

ray job submit --working-dir . -- python jobs/train.py DATA --target y --family lightgbm --out runs/m1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the working dir root, for `app`


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train one model family on Ray Train.")
    parser.add_argument("data", help="Parquet/CSV path, directory, glob or s3:// URI.")
    parser.add_argument("--target", required=True, help="Column to predict.")
    parser.add_argument(
        "--family", default="xgboost", help="A registered learner: xgboost, lightgbm, catboost."
    )
    parser.add_argument("--num-workers", type=int, default=1)
    parser.add_argument("--gpu", action="store_true", help="One GPU per worker.")
    parser.add_argument("--rounds", type=int, default=None, help="Boosting rounds.")
    parser.add_argument("--params", nargs="*", default=[], help="Library hyperparameters as key=value.")
    parser.add_argument("--out", type=Path, default=Path("runs/train"), help="Directory for the model.")
    parser.add_argument("--config", type=Path, default=None, help="AppConfig YAML.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    from app.config import AppConfig
    from app.train.api import run_training
    from app.train.cli import parse_params

    args = parse_args(argv)
    cfg = AppConfig.from_yaml(args.config) if args.config else AppConfig.from_dict({})
    overrides = {"family": args.family, "num_workers": args.num_workers, "use_gpu": args.gpu}
    if args.rounds is not None:
        overrides["num_boost_round"] = args.rounds
    params = {**cfg.train.params, **parse_params(args.params)}
    cfg.train = cfg.train.model_validate({**cfg.train.model_dump(), **overrides, "params": params})
    result = run_training(args.data, target=args.target, config=cfg, out_dir=args.out)
    summary = {
        "model_dir": str(result.model_dir),
        "family": result.family,
        "task": result.task,
        "metric": result.metric_name,
        "best_score": result.best_score,
        "best_iteration": result.best_iteration,
        "num_rounds": result.num_rounds,
        "wall_time_s": round(result.wall_time_s, 2),
    }
    print(json.dumps(summary), flush=True)
    return summary


if __name__ == "__main__":
    main()
