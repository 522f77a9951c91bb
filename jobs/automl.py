"""Ray job entrypoint for the whole AutoML fit: ``automl fit`` under ``ray job submit``, same arguments and
config file (options left out keep its ``search`` section); prints a JSON summary as its last line.

ray job submit --runtime-env jobs/runtime_env.yaml --working-dir . -- \
    uv run --frozen --extra all python jobs/automl.py DATA --target y --time-budget 600 --out /shared/runs/a1
"""

from __future__ import annotations

from typing import Any

from _entry import run_stage


def summarise(result: Any, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "model_dir": result.model_dir,
        "chosen": result.chosen,
        "metric": result.metric,
        "best_score": result.best_score,
        "ensemble_score": result.ensemble_score,
        "trials": len(result.leaderboard),
        "wall_time_s": result.wall_time_s,
        "tracking_uri": result.tracking.get("tracking_uri"),
    }


if __name__ == "__main__":
    run_stage("automl", ["fit"], summarise)
