"""What a training run is given and what it gives back: ``WorkerSpec``, sent once to every worker, and
``TrainResult``, the fitted model with how it was trained."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.data.encode import Preprocessor
    from app.train.metrics import NativeMetric
    from app.train.model import Predictor


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
