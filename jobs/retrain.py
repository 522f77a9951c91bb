"""Ray job entrypoint the monitor submits when drift or degradation persists: ``automl retrain`` under
``ray job submit`` — fit a challenger on fresh labelled data, compare it with the champion on held-out rows
of that data, promote it if it is better (replicas following ``models:/NAME@champion`` then load it).
Prints a JSON summary as its last line.

ray job submit --runtime-env jobs/runtime_env.yaml --working-dir . -- \
    uv run --frozen --extra all python jobs/retrain.py s3://b/fresh/ --target y --model-name churn
"""

from __future__ import annotations

from typing import Any

from _entry import run_stage


def summarise(outcome: Any, params: dict[str, Any]) -> dict[str, Any]:
    return outcome.to_dict()


if __name__ == "__main__":
    run_stage("retrain", ["retrain"], summarise)
