"""Ray job entrypoint for the training stage: ``automl train`` under ``ray job submit``, same arguments and
config file; prints a JSON summary as its last line.

ray job submit --runtime-env jobs/runtime_env.yaml --working-dir . -- \
    uv run --frozen --extra all python jobs/train.py DATA --target y --out s3://b/m1
"""

from __future__ import annotations

from typing import Any

from _entry import run_stage


def summarise(result: Any, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "model_dir": result.model_dir,
        "family": result.family,
        "task": result.task,
        "metric": result.metric_name,
        "best_score": result.best_score,
        "best_iteration": result.best_iteration,
        "num_rounds": result.num_rounds,
        "wall_time_s": round(result.wall_time_s, 2),
    }


if __name__ == "__main__":
    run_stage("train", ["train"], summarise)
