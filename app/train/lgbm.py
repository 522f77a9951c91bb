"""LightGBM on Ray Train: parameters, the per-worker training function, and model helpers.

Data parallel with ``tree_learner="data_parallel"`` and ``pre_partition=True`` over the network Ray's
``LightGBMTrainer`` sets up; each worker fills one float32 matrix from its shard, batch by batch, and
gets the whole validation set, so every worker computes the same metrics and stops at the same round.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from app.data.encode import Preprocessor
from app.learners import InMemoryData, Param, RoundObserver
from app.train.cadence import WorkerRun
from app.train.ingest import iter_columns, stack_columns
from app.train.matrix import feature_matrix, matrix_frame
from app.train.metrics import NativeMetric
from app.train.resources import GPUUnavailableError
from app.train.result import WorkerSpec

MODEL_FILE = "model.txt"
OBJECTIVES = {"binary": "binary", "multiclass": "multiclass", "regression": "regression"}
PACKAGES = ("lightgbm",)
SPLIT_VALID = False  # every worker evaluates the full validation set
MAX_WORKERS: int | None = None
EXTERNAL_MEMORY = False
FIXED_PARAMS: dict[str, Any] = {"bagging_freq": 1}  # bagging_fraction means nothing without it
# app.train.metrics name -> (library name, reported as 1 - value)
_NATIVE = {
    "logloss": ("binary_logloss", False),
    "auc": ("auc", False),
    "mlogloss": ("multi_logloss", False),
    "accuracy": ("multi_error", True),
    "error": ("binary_error", False),
    "rmse": ("rmse", False),
    "mae": ("l1", False),
}


def native_metric(name: str, task: str) -> tuple[str, bool]:
    if name == "accuracy" and task == "binary":
        return "binary_error", True
    return _NATIVE.get(name, (name, False))


def search_space(n_rows: int, n_features: int, task: str) -> tuple[list[Param], list[dict[str, Any]]]:
    """Searched parameters sized from the data; the library's defaults and a slower, more regularised
    configuration as initial points."""
    max_leaves = int(min(512, max(8, n_rows // 20)))
    max_child = max(3, min(200, n_rows // 50))
    space = [
        Param("learning_rate", "logfloat", 0.01, 0.3),
        Param("num_leaves", "logint", 4, max_leaves),
        Param("min_child_samples", "logint", 2, max_child),
        Param("feature_fraction", "float", 0.4 if n_features > 4 else 0.8, 1.0),
        Param("bagging_fraction", "float", 0.5, 1.0),
        Param("lambda_l2", "logfloat", 1e-3, 10.0),
        # Random split thresholds: half of AutoGluon's learned LightGBM portfolio uses them.
        Param("extra_trees", "choice", choices=(False, True)),
    ]
    initial = {
        "learning_rate": 0.1,
        "num_leaves": min(31, max_leaves),
        "min_child_samples": 2 if n_rows < 500 else min(20, max_child),
        "feature_fraction": 1.0,
        "bagging_fraction": 1.0,
        "lambda_l2": 1e-3,
        "extra_trees": False,
    }
    slow = {
        **initial,
        "learning_rate": 0.05,
        "num_leaves": min(63 if n_rows > 10_000 else 15, max_leaves),
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "lambda_l2": 1.0,
    }
    return space, [initial, slow]


def build_params(
    *,
    task: str,
    num_classes: int,
    objective: str,
    metrics: list[NativeMetric],
    threads: int,
    use_gpu: bool,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Library parameters: task defaults, then the user's ``params`` on top."""
    out: dict[str, Any] = {
        "objective": objective,
        "metric": [m.native for m in metrics],
        "num_threads": threads,
        "verbose": -1,
        "max_bin": 255,
    }
    if task == "multiclass":
        out["num_class"] = num_classes
    if use_gpu and "device_type" not in params and "device" not in params:
        out["device_type"] = gpu_device_type()
    out.update(params)
    return out


def gpu_device_type() -> str:
    """``cuda`` when this LightGBM build has the CUDA learner; otherwise a clear error.

    The PyPI wheel has no CUDA learner; its OpenCL ``gpu`` learner may land on a CPU OpenCL driver
    (PoCL) without saying so, so it is only used when asked for by name (``--params device_type=gpu``).
    """
    x = np.random.default_rng(0).random((64, 2))
    try:
        lgb.train({"device_type": "cuda", "verbose": -1}, lgb.Dataset(x, x[:, 0]), 1)
    except lgb.basic.LightGBMError as exc:
        if "not enabled in this build" in str(exc):
            raise GPUUnavailableError(
                f"this LightGBM build ({lgb.__version__}) has no CUDA learner: install a CUDA build of "
                "LightGBM, or pass params device_type=gpu for its OpenCL learner"
            ) from None
    return "cuda"


def trainer_class():
    from ray.train.lightgbm import LightGBMTrainer

    return LightGBMTrainer


def _dataset(
    shard, pre: Preprocessor, spec: WorkerSpec, reference: lgb.Dataset | None = None
) -> tuple[lgb.Dataset, int]:
    x, y, w = stack_columns(list(iter_columns(shard, pre, batch_rows=spec.batch_rows)), pre)
    cats = [i for i, t in enumerate(pre.feature_types) if t == "c"]
    dataset = lgb.Dataset(
        x,
        label=y,
        weight=w,
        feature_name=list(pre.columns),
        categorical_feature=cats or "auto",
        reference=reference,
        free_raw_data=True,
    )
    return dataset, len(y)


def train_fn_per_worker(config: dict) -> None:
    """Ray Train worker: fill the datasets, resume from the last checkpoint if any, boost, report."""
    import ray.train
    from ray.train.lightgbm import get_network_params

    run = WorkerRun(config, MODEL_FILE, load)
    spec, pre, init = run.spec, run.preprocessor, run.init
    params = dict(spec.params)
    if run.world_size > 1:
        params.update(get_network_params())
        params.update(tree_learner="data_parallel", pre_partition=True)
    dtrain, rows = _dataset(ray.train.get_dataset_shard("train"), pre, spec)
    dvalid, valid_rows = _dataset(ray.train.get_dataset_shard("valid"), pre, spec, reference=dtrain)
    start_round = init.current_iteration() if init is not None else 0
    reporter = run.reporter(
        ingest={"mode": "in_memory", "rows": rows, "valid_rows": valid_rows},
        start_round=start_round,
        save_model=lambda model, d: model.save_model(str(d / MODEL_FILE)),
    )

    def on_round(env: lgb.callback.CallbackEnv) -> None:
        native = {name: value for _, name, value, *_ in env.evaluation_result_list}
        if reporter.after_round(env.model, env.iteration + 1, native):
            raise lgb.callback.EarlyStopException(reporter.stopper.best_iteration, env.evaluation_result_list)

    booster = init
    remaining = spec.num_boost_round - start_round
    if remaining > 0 and not reporter.stopper.stopped:
        booster = lgb.train(
            params,
            dtrain,
            num_boost_round=remaining,
            valid_sets=[dvalid],
            valid_names=["valid"],
            init_model=init,
            callbacks=[on_round],
        )
    run.finish(booster, booster.current_iteration())


def fit_local(
    params: dict[str, Any], data: InMemoryData, pre: Preprocessor, rounds: int, observer: RoundObserver
) -> lgb.Booster:
    """Boost in this process on in-memory arrays; ``observer`` sees each round's validation metrics."""

    def callback(env) -> None:
        native = {name: value for _, name, value, _ in env.evaluation_result_list}
        if observer.after_round(env.iteration + 1, native, env.model):
            raise lgb.callback.EarlyStopException(env.iteration, env.evaluation_result_list)

    cats = [i for i, t in enumerate(pre.feature_types) if t == "c"] or "auto"
    kw = {"feature_name": list(pre.columns), "categorical_feature": cats, "free_raw_data": False}
    dtrain = lgb.Dataset(data.x_train, data.y_train, weight=data.w_train, **kw)
    dvalid = lgb.Dataset(data.x_valid, data.y_valid, weight=data.w_valid, reference=dtrain, **kw)
    return lgb.train(
        params,
        dtrain,
        num_boost_round=rounds,
        valid_sets=[dvalid],
        valid_names=["valid"],
        callbacks=[callback],
    )


def load(path: str | Path) -> lgb.Booster:
    return lgb.Booster(model_file=str(path))


def save(model: lgb.Booster, directory: Path) -> Path:
    path = directory / MODEL_FILE
    model.save_model(str(path))
    return path


def truncate(model: lgb.Booster, rounds: int) -> lgb.Booster:
    if rounds >= model.current_iteration():
        return model
    return lgb.Booster(model_str=model.model_to_string(num_iteration=rounds))


def importance(model: lgb.Booster, features: list[str]) -> dict[str, float]:
    gain = dict(zip(model.feature_name(), model.feature_importance("gain"), strict=True))
    return {f: float(gain.get(f, 0.0)) for f in features}


def predict(model: lgb.Booster, columns: dict, pre: Preprocessor) -> np.ndarray:
    """Probabilities ``(n, classes)`` for classification, values ``(n,)`` for regression."""
    out = model.predict(feature_matrix(columns, pre.columns))
    if pre.task == "binary" and out.ndim == 1:
        return np.column_stack([1.0 - out, out])
    return out


def native_frame(columns: dict, pre: Preprocessor):
    return matrix_frame(columns, pre)


def shap_values(model: lgb.Booster, columns: dict, pre: Preprocessor) -> np.ndarray:
    """TreeSHAP contributions from LightGBM's ``pred_contrib``: ``(n, k*(f+1))``."""
    return model.predict(feature_matrix(columns, pre.columns), pred_contrib=True)


def save_mlflow(model: lgb.Booster, path: str, **kwargs: Any) -> None:
    import mlflow.lightgbm

    mlflow.lightgbm.save_model(model, path, **kwargs)
