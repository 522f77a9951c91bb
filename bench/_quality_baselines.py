"""Baseline runner of bench/quality.py: FLAML or AutoGluon-Tabular on one train/test split.

Runs in the baselines' own environment (``.bench-venv``, see bench/quality-requirements.txt), never in
the project's: it imports neither ``app`` nor anything of the project.

    .bench-venv/bin/python bench/_quality_baselines.py --system flaml --train T.parquet --test S.parquet \
        --target y --task binary --metric auc --time-budget 60 --cpus 2 --work DIR --out result.json

Writes ``DIR/predictions.parquet`` (``proba_<class>`` per class for classifiers, ``prediction`` for
regression; rows in test-file order) and ``result.json``: fit and predict wall seconds, what was chosen.
The test file's target column is dropped before predicting; scoring is done by bench/quality.py.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

FLAML_METRIC = {"auc": "roc_auc", "logloss": "log_loss", "mlogloss": "log_loss", "rmse": "rmse"}
AG_METRIC = {
    "auc": "roc_auc",
    "logloss": "log_loss",
    "mlogloss": "log_loss",
    "rmse": "root_mean_squared_error",
}


def run_flaml(train: pd.DataFrame, x_test: pd.DataFrame, args) -> tuple[np.ndarray, list, dict]:
    from flaml import AutoML

    automl = AutoML()
    x, y = train.drop(columns=[args.target]), train[args.target]
    started = time.perf_counter()
    automl.fit(
        x,
        y,
        task="regression" if args.task == "regression" else "classification",
        metric=FLAML_METRIC[args.metric],
        time_budget=args.time_budget,
        estimator_list=["lgbm", "xgboost", "catboost"],
        n_jobs=args.cpus,
        seed=args.seed,
        log_file_name=str(Path(args.work) / "flaml.log"),
        verbose=0,
    )
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    if args.task == "regression":
        scores, classes = np.asarray(automl.predict(x_test), dtype=np.float64), []
    else:
        scores = np.asarray(automl.predict_proba(x_test), dtype=np.float64)
        classes = list(automl.classes_)
    predict_s = time.perf_counter() - started
    info = {
        "fit_s": fit_s,
        "predict_s": predict_s,
        "chosen": automl.best_estimator,
        "best_config": automl.best_config,
        "best_valid_loss": float(automl.best_loss),
    }
    return scores, classes, info


def run_autogluon(train: pd.DataFrame, x_test: pd.DataFrame, args) -> tuple[np.ndarray, list, dict]:
    from autogluon.tabular import TabularPredictor

    problem = {"binary": "binary", "multiclass": "multiclass", "regression": "regression"}[args.task]
    predictor = TabularPredictor(
        label=args.target,
        problem_type=problem,
        eval_metric=AG_METRIC[args.metric],
        path=str(Path(args.work) / "ag"),
        verbosity=1,
    )
    started = time.perf_counter()
    predictor.fit(
        train,
        time_limit=args.time_budget,
        hyperparameters={"GBM": {}, "CAT": {}, "XGB": {}},
        num_cpus=args.cpus,
        num_gpus=0,
    )
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    if args.task == "regression":
        scores, classes = np.asarray(predictor.predict(x_test), dtype=np.float64), []
    else:
        proba = predictor.predict_proba(x_test, as_multiclass=True)
        scores, classes = proba.to_numpy(dtype=np.float64), list(proba.columns)
    predict_s = time.perf_counter() - started
    board = predictor.leaderboard(silent=True)
    info = {
        "fit_s": fit_s,
        "predict_s": predict_s,
        "chosen": str(predictor.model_best),
        "models": board["model"].astype(str).tolist(),
        "best_valid_score": float(board["score_val"].iloc[0]),
    }
    return scores, classes, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", choices=["flaml", "autogluon"], required=True)
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--task", choices=["binary", "multiclass", "regression"], required=True)
    parser.add_argument("--metric", choices=sorted(FLAML_METRIC), required=True)
    parser.add_argument("--time-budget", type=float, required=True)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(args.cpus))
    Path(args.work).mkdir(parents=True, exist_ok=True)
    train = pd.read_parquet(args.train)
    x_test = pd.read_parquet(args.test).drop(columns=[args.target])
    fn = run_flaml if args.system == "flaml" else run_autogluon
    scores, classes, info = fn(train, x_test, args)
    if args.task == "regression":
        frame = pd.DataFrame({"prediction": scores})
    else:
        frame = pd.DataFrame({f"proba_{c}": scores[:, j] for j, c in enumerate(classes)})
    preds = Path(args.work) / "predictions.parquet"
    frame.to_parquet(preds, index=False)
    result = {"system": args.system, "predictions": str(preds), "classes": [str(c) for c in classes], **info}
    Path(args.out).write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
