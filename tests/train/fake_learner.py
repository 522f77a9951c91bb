"""A tiny learner for the registry test: class frequencies (or the mean), smoothed; no library.

Everything ``app.learners.Learner`` asks for, in one module, as a new family would provide it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from app.learners import Param
from app.train.matrix import matrix_frame

MODEL_FILE = "model.json"
OBJECTIVES = {"binary": "prior", "multiclass": "prior", "regression": "mean"}
PACKAGES: tuple[str, ...] = ()
SPLIT_VALID = False
MAX_WORKERS: int | None = 1
EXTERNAL_MEMORY = False
FIXED_PARAMS: dict[str, Any] = {}


def native_metric(name: str, task: str) -> tuple[str, bool]:
    return name, False


def build_params(*, task, num_classes, objective, metrics, threads, use_gpu, params) -> dict[str, Any]:
    return {"task": task, "num_classes": num_classes, "smoothing": 1.0, **params}


def search_space(n_rows: int, n_features: int, task: str) -> tuple[list[Param], list[dict[str, Any]]]:
    return [Param("smoothing", "float", 0.0, 10.0)], [{"smoothing": 1.0}]


def _fit(params: dict, y: np.ndarray) -> dict:
    if params["task"] == "regression":
        return {"task": "regression", "value": float(np.mean(y))}
    k = params["num_classes"]
    counts = np.bincount(y.astype(np.int64), minlength=k) + params["smoothing"]
    return {"task": params["task"], "proba": (counts / counts.sum()).tolist()}


def fit_local(params: dict, data, pre, rounds: int, observer) -> dict:
    from app.train.metrics import METRICS

    model = _fit(params, data.y_train)
    names = ["rmse"] if model["task"] == "regression" else ["logloss", "auc"]
    scores = {n: METRICS[n].score(data.y_valid, _scores(model, len(data.y_valid))) for n in names}
    for done in range(1, rounds + 1):
        model["rounds"] = done
        if observer.after_round(done, scores):
            break
    return model


def trainer_class():
    raise NotImplementedError("the fake learner trains in process only")


def train_fn_per_worker(config: dict) -> None:
    raise NotImplementedError("the fake learner trains in process only")


def load(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


def save(model: dict, directory: Path) -> Path:
    path = directory / MODEL_FILE
    path.write_text(json.dumps(model))
    return path


def truncate(model: dict, rounds: int) -> dict:
    return {**model, "rounds": min(rounds, model.get("rounds", rounds))}


def importance(model: dict, features: list[str]) -> dict[str, float]:
    return dict.fromkeys(features, 0.0)


def _scores(model: dict, n: int) -> np.ndarray:
    if model["task"] == "regression":
        return np.full(n, model["value"])
    return np.tile(np.asarray(model["proba"]), (n, 1))


def predict(model: dict, columns: dict, pre) -> np.ndarray:
    return _scores(model, len(next(iter(columns.values()))))


def native_frame(columns: dict, pre):
    return matrix_frame(columns, pre)


def shap_values(model: dict, columns: dict, pre) -> np.ndarray:
    return np.zeros((len(next(iter(columns.values()))), len(pre.columns) + 1))


def save_mlflow(model: dict, path: str, **kwargs: Any) -> None:
    raise NotImplementedError("no MLflow flavour for the fake learner")
