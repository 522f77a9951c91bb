"""The deployment guide's example 4 (MLflow experiment tracking) on this codebase.

Trains a small XGBoost model on generated data, then tracks it exactly as the guide does: start a run, log
params and metrics, log and register the model, end the run, find the best run. Prints a JSON summary.

    python examples/tracking_example.py --tracking-uri http://mlflow-server:5000
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import xgboost as xgb

from app.data.encode import LABEL, Preprocessor
from app.data.synthetic import make_frame
from app.tracking import MLflowConfig, MLflowTracker
from app.train.matrix import feature_matrix
from app.train.result import TrainResult


def train_small_model(rows: int = 2000) -> tuple[TrainResult, dict[str, float]]:
    """A 50-round XGBoost classifier on ``make_frame`` data and its train/valid/test accuracy."""
    frames = {name: make_frame(rows, seed=seed) for seed, name in enumerate(("train", "valid", "test"))}
    pre = Preprocessor(
        features=[c for c in frames["train"].columns if c != "y"],
        categories={"city": ["paris", "lyon", "nice", "lille"]},
        datetime=["signup"],
        target="y",
        task="binary",
        classes=[0, 1],
    )

    def matrix(frame):
        cols = pre.transform(frame)
        x = feature_matrix(cols, pre.columns)
        return xgb.DMatrix(
            x,
            cols[LABEL],
            feature_names=pre.columns,
            feature_types=pre.feature_types,
            enable_categorical=True,
        )

    data = {name: matrix(frame) for name, frame in frames.items()}
    params = {
        "objective": "binary:logistic",
        "eval_metric": "logloss",
        "max_depth": 8,
        "eta": 0.1,
        "nthread": 1,
    }
    evals: dict = {}
    booster = xgb.train(
        params, data["train"], 50, evals=[(data["valid"], "valid")], evals_result=evals, verbose_eval=False
    )
    history = evals["valid"]["logloss"]
    result = TrainResult(
        family="xgboost",
        task="binary",
        model=booster,
        preprocessor=pre,
        metric_name="logloss",
        history={"logloss": history},
        best_iteration=len(history) - 1,
        best_score=history[-1],
        num_rounds=len(history),
        feature_importance=booster.get_score(importance_type="total_gain"),
        wall_time_s=0.0,
        params=params,
    )
    scores = {
        f"{name}_score": float(np.mean((booster.predict(dm) > 0.5) == dm.get_label()))
        for name, dm in data.items()
    }
    return result, scores


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"))
    parser.add_argument("--experiment-name", default="production-automl")
    parser.add_argument("--artifact-location", default=None)
    parser.add_argument("--registered-model-name", default="production-classifier")
    parser.add_argument(
        "--run-dir", default=None, help="Where the offline journal goes if the server is down."
    )
    args = parser.parse_args(argv)
    run_dir = Path(args.run_dir or tempfile.mkdtemp(prefix="tracking-example-"))

    trained_model, scores = train_small_model()

    # Configure MLflow
    config = MLflowConfig(
        tracking_uri=args.tracking_uri,
        experiment_name=args.experiment_name,
        artifact_location=args.artifact_location,
    )

    # Create tracker
    tracker = MLflowTracker(config, run_dir=run_dir)

    # Track optimization run
    run_id = tracker.start_run(run_name="xgboost-optimization")

    tracker.log_params(
        {
            "max_depth": 8,
            "learning_rate": 0.1,
            "n_estimators": 50,
        }
    )

    tracker.log_metrics(scores)

    # Log trained model
    logged = tracker.log_model(
        model=trained_model,
        registered_model_name=args.registered_model_name,
    )

    tracker.end_run()

    # Get best run
    best_run = tracker.get_best_run(metric="test_score")

    summary = {
        "run_id": run_id,
        "scores": scores,
        "model_uri": logged.model_uri if logged else None,
        "registered_version": logged.registered_version if logged else None,
        "best_run_id": best_run.info.run_id if best_run else None,
        "offline": tracker.offline,
        "finished_unix": time.time(),
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
