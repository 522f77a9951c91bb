"""CatBoost as a one-worker Ray Train job: parameters, the per-worker function, and model helpers.

CatBoost has no Ray backend, so it runs on a single worker. It boosts in chunks whose length is the
report cadence, continuing each chunk from the last with ``init_model``: that gives checkpoints at exact
rounds and the same reporting as the other families. Categorical codes go in as ints (NaN -> -1), those of
high-cardinality columns too: CatBoost gets their raw levels and ignores the preprocessor's encodings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from catboost import CatBoost, Pool

from app.data.encode import LABEL, WEIGHT, Preprocessor
from app.learners import InMemoryData, Param, RoundObserver
from app.train.cadence import WorkerRun
from app.train.ingest import concat_columns, iter_columns
from app.train.metrics import NativeMetric
from app.train.result import WorkerSpec

MODEL_FILE = "model.cbm"
OBJECTIVES = {"binary": "Logloss", "multiclass": "MultiClass", "regression": "RMSE"}
PACKAGES = ("catboost",)
SPLIT_VALID = False
MAX_WORKERS: int | None = 1  # no data-parallel training through Ray Train: one worker
EXTERNAL_MEMORY = False
FIXED_PARAMS: dict[str, Any] = {}
# app.train.metrics name -> (library name, reported as 1 - value)
_NATIVE = {
    "logloss": ("Logloss", False),
    "auc": ("AUC", False),
    "mlogloss": ("MultiClass", False),
    "accuracy": ("Accuracy", False),
    "error": ("ZeroOneLoss", False),
    "rmse": ("RMSE", False),
    "mae": ("MAE", False),
}


def native_metric(name: str, task: str) -> tuple[str, bool]:
    return _NATIVE.get(name, (name, False))


def search_space(n_rows: int, n_features: int, task: str) -> tuple[list[Param], list[dict[str, Any]]]:
    """Searched parameters sized from the data; the library's defaults and a slower, more regularised
    configuration as initial points."""
    space = [
        Param("learning_rate", "logfloat", 0.02, 0.3),
        Param("depth", "int", 4, 8 if n_rows < 1_000_000 else 10),
        Param("l2_leaf_reg", "logfloat", 1.0, 10.0),
        Param("random_strength", "logfloat", 0.1, 10.0),
    ]
    initial = {"learning_rate": 0.1, "depth": 6, "l2_leaf_reg": 3.0, "random_strength": 1.0}
    slow = {
        "learning_rate": 0.05,
        "depth": 8 if n_rows > 10_000 else 4,
        "l2_leaf_reg": 5.0,
        "random_strength": 1.0,
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
    """Library parameters: task defaults, then the user's ``params`` on top.

    The learning rate is fixed (CatBoost would otherwise pick one from ``iterations``, which differs
    per chunk).
    """
    out: dict[str, Any] = {
        "loss_function": objective,
        "eval_metric": metrics[0].native,
        "thread_count": threads,
        "learning_rate": 0.1,
        "random_seed": 0,
        "verbose": 0,
        "allow_writing_files": False,
    }
    if len(metrics) > 1:
        out["custom_metric"] = [m.native for m in metrics[1:]]
    if use_gpu:
        out.update(task_type="GPU", devices="0")
    out.update(params)
    return out


def trainer_class():
    from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer

    return DataParallelTrainer


def frame(columns: dict[str, np.ndarray], pre: Preprocessor) -> pd.DataFrame:
    """Features as CatBoost wants them: float32 numbers, categorical codes as int32 with -1 for missing."""
    data = {}
    for name in pre.columns:
        col = columns[name]
        if name in pre.categories:
            col = np.where(np.isnan(col), -1, col).astype(np.int32)
        data[name] = col
    return pd.DataFrame(data, copy=False)


def model_params(params: dict[str, Any], pre: Preprocessor) -> dict[str, Any]:
    """``params`` for this data: CatBoost computes its own ordered target statistics from the raw
    levels' codes, so the preprocessor's frequency and target-mean columns are ignored."""
    ignored = pre.encoded_columns
    return {**params, "ignored_features": ignored} if ignored else params


def _pool(shard, pre: Preprocessor, spec: WorkerSpec) -> Pool:
    batches = list(iter_columns(shard, pre, batch_rows=spec.batch_rows))
    cols = concat_columns(batches, [*pre.columns, LABEL, WEIGHT])
    return Pool(
        frame(cols, pre),
        label=cols[LABEL],
        weight=cols.get(WEIGHT),
        cat_features=pre.categorical_features or None,
    )


def train_fn_per_worker(config: dict) -> None:
    """Ray Train worker: build the pools, resume from the last checkpoint if any, boost in chunks."""
    import ray.train

    run = WorkerRun(config, MODEL_FILE, load)
    spec, pre, model = run.spec, run.preprocessor, run.init
    train_pool = _pool(ray.train.get_dataset_shard("train"), pre, spec)
    valid_pool = _pool(ray.train.get_dataset_shard("valid"), pre, spec)
    done = model.tree_count_ if model is not None else 0
    reporter = run.reporter(
        ingest={"mode": "in_memory", "rows": train_pool.num_row(), "valid_rows": valid_pool.num_row()},
        start_round=done,
        save_model=lambda m, d: m.save_model(str(d / MODEL_FILE), format="cbm"),
    )
    while done < spec.num_boost_round and not reporter.stopper.stopped:
        chunk = max(1, min(reporter.cadence.next_round, spec.num_boost_round) - done)
        step = CatBoost({**model_params(spec.params, pre), "iterations": chunk})
        step.fit(train_pool, eval_set=valid_pool, init_model=model)
        model = step
        evals = step.get_evals_result()["validation"]
        for i in range(chunk):
            done += 1
            if reporter.after_round(model, done, {k: v[i] for k, v in evals.items()}):
                break
    run.finish(model, model.tree_count_)


def fit_local(
    params: dict[str, Any], data: InMemoryData, pre: Preprocessor, rounds: int, observer: RoundObserver
) -> CatBoost:
    """Boost in this process on in-memory arrays; ``observer`` sees each round's validation metrics."""

    def pool(x, y, w):
        return Pool(
            frame({n: x[:, j] for j, n in enumerate(pre.columns)}, pre),
            label=y,
            weight=w,
            cat_features=pre.categorical_features or None,
        )

    class Callback:
        def __init__(self, before: int) -> None:
            self.before = before  # rounds of the model this fit continues

        def after_iteration(self, info) -> bool:  # CatBoost: return False to stop
            native = {k: v[-1] for k, v in info.metrics.get("validation", {}).items()}
            return not observer.after_round(self.before + info.iteration, native)

    train = pool(data.x_train, data.y_train, data.w_train)
    valid = pool(data.x_valid, data.y_valid, data.w_valid)
    # CatBoost holds its model until fit returns: an observer that asks for it mid-way (a search trial
    # persisting its best model so far) pauses training, takes the model and boosting continues from it.
    model, done = None, 0
    while True:
        part = CatBoost({**model_params(params, pre), "iterations": rounds - done, "use_best_model": False})
        part.fit(train, eval_set=valid, callbacks=[Callback(done)], init_model=model)
        model, done = part, part.tree_count_
        resume = getattr(observer, "resume", None)
        if done >= rounds or resume is None or not resume(model):
            return model


def load(path: str | Path) -> CatBoost:
    model = CatBoost()
    model.load_model(str(path), format="cbm")
    return model


def save(model: CatBoost, directory: Path) -> Path:
    path = directory / MODEL_FILE
    model.save_model(str(path), format="cbm")
    return path


def truncate(model: CatBoost, rounds: int) -> CatBoost:
    if rounds >= model.tree_count_:
        return model
    model = model.copy()
    model.shrink(ntree_end=rounds)
    return model


def importance(model: CatBoost, features: list[str]) -> dict[str, float]:
    values = model.get_feature_importance()
    return {f: float(v) for f, v in zip(features, values, strict=True)}


def predict(model: CatBoost, columns: dict, pre: Preprocessor) -> np.ndarray:
    """Probabilities ``(n, classes)`` for classification, values ``(n,)`` for regression."""
    pool = Pool(frame(columns, pre), cat_features=pre.categorical_features or None)
    if pre.task == "regression":
        return np.asarray(model.predict(pool, prediction_type="RawFormulaVal"))
    return np.asarray(model.predict(pool, prediction_type="Probability"))


def native_frame(columns: dict, pre: Preprocessor) -> pd.DataFrame:
    return frame(columns, pre)


def shap_values(model: CatBoost, columns: dict, pre: Preprocessor) -> np.ndarray:
    """TreeSHAP contributions from CatBoost's ``ShapValues``: ``(n, f+1)`` or ``(n, k, f+1)``."""
    pool = Pool(frame(columns, pre), cat_features=pre.categorical_features or None)
    return model.get_feature_importance(pool, type="ShapValues")


def save_mlflow(model: CatBoost, path: str, **kwargs: Any) -> None:
    import mlflow.catboost

    mlflow.catboost.save_model(model, path, **kwargs)
