"""Model directories trained in-process with the libraries themselves (no Ray) and written by
``save_model``, and trackers on the session's ``mlflow server`` with an experiment of their own."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.config import TrackingConfig
from app.data.encode import LABEL, Preprocessor
from app.data.synthetic import make_frame
from app.train.matrix import feature_matrix
from app.train.model import save_model
from app.train.result import TrainResult

CITIES = ["paris", "lyon", "nice", "lille"]
OBJECTIVES = {
    "xgboost": {
        "binary": "binary:logistic",
        "multiclass": "multi:softprob",
        "regression": "reg:squarederror",
    },
    "lightgbm": {"binary": "binary", "multiclass": "multiclass", "regression": "regression"},
    "catboost": {"binary": "Logloss", "multiclass": "MultiClass", "regression": "RMSE"},
}
METRICS = {"binary": "logloss", "multiclass": "mlogloss", "regression": "rmse"}


def preprocessor(frame: pd.DataFrame, task: str) -> Preprocessor:
    classes = None if task == "regression" else sorted(int(c) for c in frame["y"].unique())
    return Preprocessor(
        features=[c for c in frame.columns if c != "y"],
        categories={"city": CITIES} if "city" in frame else {},
        datetime=["signup"] if "signup" in frame else [],
        target="y",
        task=task,
        classes=classes,
    )


def train_model_dir(
    out_dir: Path,
    *,
    family: str = "xgboost",
    task: str = "binary",
    rows: int = 1500,
    rounds: int = 30,
    numbers_only: bool = False,
) -> Path:
    """A small model of ``family`` on ``make_frame`` data (its numeric columns alone with
    ``numbers_only``), saved in ``app.train.model``'s layout."""
    frame = make_frame(rows, task=task, seed=0)
    if numbers_only:
        frame = frame.drop(columns=["city", "signup"])
    pre = preprocessor(frame, task)
    cols = pre.transform(frame)
    x, y = feature_matrix(cols, pre.columns), cols[LABEL]
    k = pre.num_classes
    objective, metric = OBJECTIVES[family][task], METRICS[task]
    if family == "xgboost":
        import xgboost as xgb

        dm = xgb.DMatrix(
            x, y, feature_names=pre.columns, feature_types=pre.feature_types, enable_categorical=True
        )
        params = {"objective": objective, "eval_metric": metric, "nthread": 1, "max_depth": 4, "eta": 0.2}
        if task == "multiclass":
            params["num_class"] = k
        evals: dict = {}
        model = xgb.train(params, dm, rounds, evals=[(dm, "valid")], evals_result=evals, verbose_eval=False)
        history = evals["valid"][metric]
    elif family == "lightgbm":
        import lightgbm as lgb

        native = {"logloss": "binary_logloss", "mlogloss": "multi_logloss", "rmse": "rmse"}[metric]
        params = {
            "objective": objective,
            "metric": native,
            "num_threads": 1,
            "verbose": -1,
            "learning_rate": 0.2,
        }
        if task == "multiclass":
            params["num_class"] = k
        cats = [i for i, t in enumerate(pre.feature_types) if t == "c"]
        ds = lgb.Dataset(x, y, feature_name=list(pre.columns), categorical_feature=cats)
        evals = {}
        model = lgb.train(
            params,
            ds,
            rounds,
            valid_sets=[ds],
            valid_names=["valid"],
            callbacks=[lgb.record_evaluation(evals)],
        )
        history = evals["valid"][native]
    else:
        from catboost import CatBoost, Pool

        from app.train.cat import frame as cat_frame

        pool = Pool(cat_frame(cols, pre), y, cat_features=pre.categorical_features)
        model = CatBoost(
            {"loss_function": objective, "iterations": rounds, "thread_count": 1, "verbose": False}
        )
        model.fit(pool, eval_set=pool)
        history = list(model.get_evals_result()["validation"].values())[0]
    result = TrainResult(
        family=family,
        task=task,
        model=model,
        preprocessor=pre,
        metric_name=metric,
        history={metric: [float(v) for v in history]},
        best_iteration=len(history) - 1,
        best_score=float(history[-1]),
        num_rounds=len(history),
        feature_importance={f: float(i) for i, f in enumerate(pre.columns)},
        wall_time_s=0.1,
        params=params if family != "catboost" else {"loss_function": objective},
    )
    return save_model(result, out_dir)


@pytest.fixture(scope="session")
def xgb_dir(tmp_path_factory) -> Path:
    return train_model_dir(tmp_path_factory.mktemp("xgb") / "model", family="xgboost")


@pytest.fixture(scope="session")
def lgb_dir(tmp_path_factory) -> Path:
    return train_model_dir(tmp_path_factory.mktemp("lgb") / "model", family="lightgbm")


@pytest.fixture(scope="session")
def holdout() -> pd.DataFrame:
    """Rows the models never saw, target included."""
    return make_frame(400, task="binary", seed=1)


@pytest.fixture(scope="session")
def logged_pipelines(mlflow_url, xgb_dir, lgb_dir, holdout, tmp_path_factory):
    """One run with the xgboost and lightgbm pipelines logged, not registered: (run id, family -> URI)."""
    from app.tracking.tracker import MLflowTracker

    tracker = MLflowTracker(
        TrackingConfig(tracking_uri=mlflow_url, experiment_name="shared-fits"),
        run_dir=tmp_path_factory.mktemp("shared-fits"),
    )
    run_id = tracker.start_run("fits")
    example = holdout.head(3)
    uris = {
        "xgboost": tracker.log_model(xgb_dir, name="xgb", input_example=example).model_uri,
        "lightgbm": tracker.log_model(lgb_dir, name="lgb", input_example=example).model_uri,
    }
    tracker.end_run()
    return run_id, uris


def register(registry, name: str, logged_pipelines, family: str = "xgboost"):
    """A new version of ``name`` from one of ``logged_pipelines``."""
    run_id, uris = logged_pipelines
    return registry.register(name, uris[family], run_id=run_id, model_id=uris[family].split("/")[-1])


@pytest.fixture
def unique_name(request) -> str:
    return f"{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def tracker(mlflow_url, tmp_path, unique_name):
    """A tracker on the session's server, its own experiment, its run dir under ``tmp_path``."""
    from app.tracking.tracker import MLflowTracker

    config = TrackingConfig(tracking_uri=mlflow_url, experiment_name=unique_name)
    return MLflowTracker(config, run_dir=tmp_path / "run")


def histories(n_trials: int, rounds: int, seed: int = 0) -> list[list[float]]:
    """Decreasing, distinct per-round losses, one list per trial."""
    rng = np.random.default_rng(seed)
    return [
        list(np.round(0.7 / np.sqrt(np.arange(1, rounds + 1)) + rng.uniform(0, 0.1), 6))
        for _ in range(n_trials)
    ]
