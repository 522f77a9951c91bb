"""XGBoost on Ray Train: parameters, the per-worker training function, and model helpers.

Each worker streams its shard into a ``QuantileDMatrix`` through an ``xgboost.DataIter`` (or into an
``ExtMemQuantileDMatrix`` when the shard is over the memory budget); Ray's ``XGBoostTrainer`` sets up the
collective, so histograms and metrics are all-reduced across workers.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from app.data.encode import Preprocessor
from app.learners import InMemoryData, Param, RoundObserver
from app.train.cadence import Reporter, WorkerRun
from app.train.ingest import Batch, Spill, iter_batches, make_data_iter
from app.train.matrix import feature_matrix, matrix_frame
from app.train.metrics import NativeMetric
from app.train.result import WorkerSpec

MODEL_FILE = "model.ubj"
OBJECTIVES = {"binary": "binary:logistic", "multiclass": "multi:softprob", "regression": "reg:squarederror"}
PACKAGES = ("xgboost",)
SPLIT_VALID = True
MAX_WORKERS: int | None = None
EXTERNAL_MEMORY = True  # a shard over the memory budget streams through ExtMemQuantileDMatrix
FIXED_PARAMS: dict[str, Any] = {}
# app.train.metrics name -> (library name, reported as 1 - value)
_NATIVE = {
    "logloss": ("logloss", False),
    "auc": ("auc", False),
    "mlogloss": ("mlogloss", False),
    "accuracy": ("merror", True),
    "error": ("error", False),
    "rmse": ("rmse", False),
    "mae": ("mae", False),
}
logger = logging.getLogger(__name__)


def native_metric(name: str, task: str) -> tuple[str, bool]:
    if name == "accuracy" and task == "binary":
        return "error", True
    return _NATIVE.get(name, (name, False))


def search_space(n_rows: int, n_features: int, task: str) -> tuple[list[Param], list[dict[str, Any]]]:
    """Searched parameters sized from the data; the library's defaults and a slower, more regularised
    configuration as initial points."""
    deep = 12 if n_rows > 100_000 else 10
    space = [
        Param("eta", "logfloat", 0.01, 0.3),
        Param("max_depth", "int", 3, deep),
        Param("min_child_weight", "logfloat", 0.1, 32.0),
        Param("subsample", "float", 0.5, 1.0),
        Param("colsample_bytree", "float", 0.4 if n_features > 4 else 0.8, 1.0),
        Param("reg_lambda", "logfloat", 1e-3, 10.0),
        Param("reg_alpha", "logfloat", 1e-3, 10.0),
    ]
    initial = {
        "eta": 0.1,
        "max_depth": 6,
        "min_child_weight": 1.0,
        "subsample": 1.0,
        "colsample_bytree": 1.0,
        "reg_lambda": 1.0,
        "reg_alpha": 1e-3,
    }
    slow = {
        **initial,
        "eta": 0.05,
        "max_depth": 8 if n_rows > 10_000 else 4,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "min_child_weight": 2.0,
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
        "eval_metric": [m.native for m in metrics],
        "tree_method": "hist",
        "nthread": threads,
        "max_bin": 256,
    }
    if task == "multiclass":
        out["num_class"] = num_classes
    if use_gpu:
        out["device"] = "cuda"
    out.update(params)
    return out


def trainer_class():
    from ray.train.xgboost import XGBoostTrainer

    return XGBoostTrainer


class _RoundCallback(xgb.callback.TrainingCallback):
    def __init__(self, reporter: Reporter) -> None:
        super().__init__()
        self.reporter = reporter

    def after_iteration(self, model: xgb.Booster, epoch: int, evals_log: dict) -> bool:
        valid = evals_log["valid"]
        native = {name: values[-1] for name, values in valid.items()}
        return self.reporter.after_round(model, epoch + 1, native)


def _matrices(spec: WorkerSpec, pre: Preprocessor, cache_dir: str) -> tuple[Any, Any, dict]:
    import ray.train

    p = spec.params
    kwargs = {"nthread": p.get("nthread"), "max_bin": p.get("max_bin", 256), "enable_categorical": True}

    stats: dict[str, dict] = {"train": {}, "valid": {}}

    # On a GPU, in-memory batches go to the device as they are read: QuantileDMatrix then sketches and
    # quantises device arrays, far faster than from host numpy (README, GPU figures).
    to_device = None if spec.external_memory else device_copier(p.get("device", "cpu"))

    def read(name: str):
        shard = ray.train.get_dataset_shard(name)
        batches = iter_batches(shard, pre, batch_rows=spec.batch_rows, stats=stats[name])
        if spec.external_memory:
            return lambda: Spill(Path(cache_dir, f"{name}-spill")).write(batches)
        if to_device is not None:
            return lambda: [to_device(b) for b in batches]
        return lambda: list(batches)

    # One after the other: two Ray Data executors at once in a worker starve each other of CPUs.
    t0 = time.perf_counter()
    data = {name: read(name)() for name in ("train", "valid")}
    t1 = time.perf_counter()
    if spec.external_memory:
        matrix, cache = xgb.ExtMemQuantileDMatrix, {n: str(Path(cache_dir, f"{n}-cache")) for n in data}
    else:
        matrix, cache = xgb.QuantileDMatrix, {n: None for n in data}
    it = make_data_iter(data["train"], preprocessor=pre, cache_prefix=cache["train"])
    dtrain = matrix(it, **kwargs)
    vit = make_data_iter(data["valid"], preprocessor=pre, cache_prefix=cache["valid"])
    dvalid = matrix(vit, ref=dtrain, **kwargs)
    train = data["train"]
    ingest = {
        "mode": "external_memory" if spec.external_memory else "in_memory",
        "batch_device": "cuda" if to_device is not None else "cpu",
        "read_s": t1 - t0,
        "read_wait_s": stats["train"].get("wait_s", 0.0),
        "encode_s": stats["train"].get("encode_s", 0.0),
        "dmatrix_s": time.perf_counter() - t1,
        "rows": int(dtrain.num_row()),
        "valid_rows": int(dvalid.num_row()),
        "batches": train.batches if isinstance(train, Spill) else len(train),
        "passes": it.passes,
        "spill_bytes": train.nbytes if isinstance(train, Spill) else 0,
    }
    data.clear()  # in memory, the float32 batches go; the quantised matrices stay
    if to_device is not None:
        import cupy

        cupy.get_default_memory_pool().free_all_blocks()
    return dtrain, dvalid, ingest


def device_copier(device: str) -> Callable[[Batch], Batch] | None:
    """A function moving a batch's arrays to ``device`` ("cuda", "cuda:N"), or None on the CPU.

    None too when CuPy is not installed: the batches then stay in host memory and XGBoost copies them
    to the device itself (slower to sketch, same model).
    """
    if not device.startswith("cuda"):
        return None
    try:
        import cupy
    except ImportError:
        logger.warning("CuPy is not installed: QuantileDMatrix is built from host batches on %s", device)
        return None

    def copy(batch: Batch) -> Batch:
        w = cupy.asarray(batch.w) if batch.w is not None else None
        x = cupy.ascontiguousarray(cupy.asarray(batch.x))  # the host batch is column-major
        return Batch(x=x, y=cupy.asarray(batch.y), w=w)

    return copy


def train_fn_per_worker(config: dict) -> None:
    """Ray Train worker: ingest the shards, resume from the last checkpoint if any, boost, report."""
    run = WorkerRun(config, MODEL_FILE, load)
    spec, init = run.spec, run.init
    with tempfile.TemporaryDirectory(prefix="automl-xgb-cache-") as cache_dir:
        dtrain, dvalid, ingest = _matrices(spec, run.preprocessor, cache_dir)
        start_round = init.num_boosted_rounds() if init is not None else 0
        reporter = run.reporter(
            ingest=ingest,
            start_round=start_round,
            save_model=lambda model, d: model.save_model(str(d / MODEL_FILE)),
        )
        booster = init
        remaining = spec.num_boost_round - start_round
        if remaining > 0 and not reporter.stopper.stopped:
            booster = xgb.train(
                spec.params,
                dtrain,
                num_boost_round=remaining,
                evals=[(dvalid, "valid")],
                xgb_model=init,
                callbacks=[_RoundCallback(reporter)],
                verbose_eval=False,
            )
        run.finish(booster, booster.num_boosted_rounds())


def fit_local(
    params: dict[str, Any], data: InMemoryData, pre: Preprocessor, rounds: int, observer: RoundObserver
) -> xgb.Booster:
    """Boost in this process on in-memory arrays; ``observer`` sees each round's validation metrics."""

    class Callback(xgb.callback.TrainingCallback):
        def after_iteration(self, model, epoch, evals_log) -> bool:
            native = {k: v[-1] for k, v in evals_log["valid"].items()}
            return observer.after_round(epoch + 1, native, model)

    kw = {
        "feature_types": pre.feature_types,
        "enable_categorical": True,
        "max_bin": params.get("max_bin", 256),
    }
    dtrain = xgb.QuantileDMatrix(data.x_train, data.y_train, weight=data.w_train, **kw)
    dvalid = xgb.QuantileDMatrix(data.x_valid, data.y_valid, weight=data.w_valid, ref=dtrain, **kw)
    return xgb.train(
        params,
        dtrain,
        num_boost_round=rounds,
        evals=[(dvalid, "valid")],
        callbacks=[Callback()],
        verbose_eval=False,
    )


def load(path: str | Path) -> xgb.Booster:
    booster = xgb.Booster()
    booster.load_model(str(path))
    return booster


def save(model: xgb.Booster, directory: Path) -> Path:
    path = directory / MODEL_FILE
    model.save_model(str(path))
    return path


def truncate(model: xgb.Booster, rounds: int) -> xgb.Booster:
    return model[:rounds] if rounds < model.num_boosted_rounds() else model


def importance(model: xgb.Booster, features: list[str]) -> dict[str, float]:
    gain = model.get_score(importance_type="total_gain")
    return {f: float(gain.get(f, 0.0)) for f in features}


def predict(model: xgb.Booster, columns: dict, pre: Preprocessor) -> np.ndarray:
    """Probabilities ``(n, classes)`` for classification, values ``(n,)`` for regression."""
    out = model.inplace_predict(feature_matrix(columns, pre.columns))
    if pre.task == "binary" and out.ndim == 1:
        return np.column_stack([1.0 - out, out])
    return out


def set_device(model: xgb.Booster, device: str) -> None:
    model.set_param({"device": device})


def native_frame(columns: dict, pre: Preprocessor):
    return matrix_frame(columns, pre)


def shap_values(model: xgb.Booster, columns: dict, pre: Preprocessor) -> np.ndarray:
    """TreeSHAP contributions from XGBoost's ``pred_contribs``: ``(n, f+1)`` or ``(n, k, f+1)``."""
    dm = xgb.DMatrix(
        feature_matrix(columns, pre.columns),
        feature_names=pre.columns,
        feature_types=pre.feature_types,
        enable_categorical=True,
    )
    return model.predict(dm, pred_contribs=True)


def save_mlflow(model: xgb.Booster, path: str, **kwargs: Any) -> None:
    import mlflow.xgboost

    mlflow.xgboost.save_model(model, path, model_format="ubj", **kwargs)
