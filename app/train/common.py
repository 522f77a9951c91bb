"""What the three model families share: task defaults, the spec sent to workers, the result, resources.

Metrics are ``app.train.metrics``' (``logloss``, ``auc``, ``mlogloss``, ``accuracy``, ``rmse``, ``mae``);
each family maps them to its own name (``NativeMetric``), and a name it does not know passes through as is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.learners import learner
from app.train.metrics import DEFAULT_METRICS, Metric, get_metric

if TYPE_CHECKING:
    from app.data.encode import Preprocessor
    from app.train.model import Predictor


class GPUUnavailableError(RuntimeError):
    """A GPU was requested that the cluster or the installed library build cannot provide."""


@dataclass(frozen=True)
class NativeMetric:
    """A ``Metric`` as one library reports it: the library's name, and whether it reports ``1 - value``."""

    metric: Metric
    native: str
    complement: bool = False  # the library reports an error rate; the metric is 1 - rate

    @property
    def name(self) -> str:
        return self.metric.name

    @property
    def maximize(self) -> bool:
        return self.metric.maximize

    def value(self, native_value: float) -> float:
        return 1.0 - float(native_value) if self.complement else float(native_value)


def resolve_metrics(family: str, task: str, names: list[str] | None) -> list[NativeMetric]:
    """The validation metrics of a run: the task's defaults, or ``names`` mapped to the family's names."""
    mod = learner(family)
    out = []
    for name in names or DEFAULT_METRICS[task]:
        native, complement = mod.native_metric(name, task)
        out.append(NativeMetric(metric=get_metric(name), native=native, complement=complement))
    return out


@dataclass
class WorkerSpec:
    """Everything a training worker needs, sent once through ``train_loop_config``.

    ``params`` are the library's parameters, complete (objective, metrics, threads, device);
    ``round_hook(round, resumed=..., rank=...)`` runs on every worker after every round (fault injection
    in tests, progress probes).
    """

    family: str
    task: str
    params: dict[str, Any]
    num_boost_round: int
    early_stopping_rounds: int | None
    checkpoint_every: int
    report_every_s: float | None
    min_report_interval_s: float
    metrics: list[NativeMetric]
    preprocessor: dict
    external_memory: bool = False
    batch_rows: int | None = None
    round_hook: Callable[..., None] | None = None
    deadline: float | None = None  # Unix time: stop after the round that passes it (one worker only)


@dataclass
class TrainResult:
    """A fitted model and how it was trained.

    ``history[metric]`` holds the validation value after every round; ``best_iteration`` is 0-based;
    with early stopping the model keeps rounds ``0..best_iteration`` only. ``timings`` splits the wall
    time into Ray Train start (``start_s``: ``fit()`` to the worker's first line), ingestion, training and
    teardown; ``ingest['mode']`` says whether XGBoost used ``QuantileDMatrix`` or external memory.
    ``deadline_reached``: boosting stopped at a wall-clock deadline, not by early stopping or the round
    limit.
    """

    family: str
    task: str
    model: Any
    preprocessor: Preprocessor
    metric_name: str
    history: dict[str, list[float]]
    best_iteration: int
    best_score: float
    num_rounds: int
    feature_importance: dict[str, float]
    wall_time_s: float
    params: dict[str, Any]
    num_workers: int = 1
    timings: dict[str, float] = field(default_factory=dict)
    ingest: dict[str, Any] = field(default_factory=dict)
    resumed_from_round: int | None = None
    checkpoint_path: str | None = None
    model_dir: Path | None = None
    deadline_reached: bool = False

    def predictor(self) -> Predictor:
        """A ``Predictor`` over the in-memory model (the same one ``load_model`` gives after saving)."""
        from app.train.model import Predictor

        return Predictor(
            family=self.family, model=self.model, preprocessor=self.preprocessor, metadata=self.metadata()
        )

    def metadata(self) -> dict[str, Any]:
        """The JSON-able description written next to the model as ``metadata.json``."""
        pre = self.preprocessor
        return {
            "family": self.family,
            "task": self.task,
            "target": pre.target,
            "features": list(pre.features),
            "columns": pre.columns,
            "categorical_features": pre.categorical_features,
            "classes": pre.classes,
            "params": self.params,
            "metric_name": self.metric_name,
            "best_iteration": self.best_iteration,
            "best_score": self.best_score,
            "num_rounds": self.num_rounds,
            "num_workers": self.num_workers,
            "metrics": {
                k: v[self.best_iteration] for k, v in self.history.items() if len(v) > self.best_iteration
            },
            "history": self.history,
            "feature_importance": self.feature_importance,
            "wall_time_s": self.wall_time_s,
            "timings": self.timings,
            "ingest": self.ingest,
            "resumed_from_round": self.resumed_from_round,
            "deadline_reached": self.deadline_reached,
        }


def worker_cpus(*, requested: float, num_workers: int, cluster_cpus: float) -> float:
    """CPUs reserved per worker: the request, capped so that one CPU stays free for Ray Data's tasks.

    Ray Data read and map tasks need a whole CPU each; when the workers reserve every CPU, a lazy
    dataset never starts (field notes: 2 workers x 1 CPU on 2 CPUs hangs in ReadFiles).
    """
    spare = max(cluster_cpus - 1.0, 0.0)
    cap = spare / num_workers if spare > 0 else cluster_cpus / (2 * num_workers)
    return round(max(min(requested, cap), 0.05), 3)


def worker_threads(*, requested_threads: int | None, cpus_per_worker: float) -> int:
    """Library threads per worker: as requested, else the worker's CPU share, at least 1."""
    return requested_threads or max(1, int(cpus_per_worker))


def check_gpus(*, num_workers: int, cluster_gpus: float) -> None:
    """Fail early, with the numbers, when the cluster has fewer GPUs than workers."""
    if cluster_gpus < num_workers:
        raise GPUUnavailableError(
            f"use_gpu=True needs one GPU per worker ({num_workers}), but the Ray cluster has "
            f"{cluster_gpus:g} GPU(s); drop --gpu or connect to a cluster with GPUs"
        )


def feature_matrix(columns: dict, features: list[str]):
    """Row-major float32 matrix of ``features`` from the preprocessor's columns (one copy)."""
    import numpy as np

    n = len(columns[features[0]]) if features else 0
    out = np.empty((n, len(features)), dtype=np.float32)
    fill_rows(out, 0, [columns[name] for name in features])
    return out


def matrix_frame(columns: dict, pre: Preprocessor):
    """The preprocessor's columns as one float32 frame (how XGBoost and LightGBM take features)."""
    import pandas as pd

    return pd.DataFrame(feature_matrix(columns, pre.columns), columns=pre.columns)


def fill_rows(out, row: int, columns: list, *, step: int = 4096) -> None:
    """Write ``columns`` into the row-major ``out`` from ``row`` on, ``step`` rows at a time.

    Column by column over the whole length writes one value per cache line; a few thousand rows at a
    time keep the rows being written in cache.
    """
    m = len(columns[0]) if columns else 0
    for start in range(0, m, step):
        block = out[row + start : row + min(start + step, m)]
        for j, values in enumerate(columns):
            block[:, j] = values[start : start + step]
