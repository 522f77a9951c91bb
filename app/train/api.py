"""The training stage's entry points: ``train`` (Ray Datasets in, ``TrainResult`` out) and
``run_training`` (a data path in, a saved model directory out)."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.learners import Learner, learner
from app.train.ingest import estimate_shard_bytes
from app.train.metrics import resolve_metrics
from app.train.resources import check_gpus, worker_cpus, worker_threads
from app.train.result import TrainResult, WorkerSpec

if TYPE_CHECKING:
    import pyarrow.fs as pafs
    import ray.data

    from app.config import AppConfig, S3Config, TrainConfig
    from app.data import PreparedData, Preprocessor

logger = logging.getLogger(__name__)


def train(
    data: PreparedData | Mapping[str, ray.data.Dataset],
    *,
    config: TrainConfig,
    preprocessor: Preprocessor | None = None,
    num_rows: int | None = None,
    run_name: str | None = None,
    s3: S3Config | None = None,
    storage_filesystem: pafs.FileSystem | None = None,
    round_hook: Callable[..., None] | None = None,
    callbacks: list[Any] | None = None,
    deadline: float | None = None,
) -> TrainResult:
    """Train one model family on Ray Train and return the fitted model with its history.

    Args:
        data: ``PreparedData`` from ``app.data.prepare``, or ``{"train": ds, "valid": ds}`` with raw
            columns (then ``preprocessor`` is required).
        config: family, task overrides, rounds, workers, resources, checkpoints.
        preprocessor: encodes the raw columns; taken from ``data`` when it is ``PreparedData``.
        num_rows: training rows, for the memory-budget decision (counted when unknown and needed).
        run_name: Ray Train run name; unique by default (a reused name resumes the old run).
        s3: endpoint settings when ``config.storage_path`` is ``s3://``.
        storage_filesystem: a ready pyarrow filesystem for ``config.storage_path`` instead (it travels
            to the workers, credentials included).
        round_hook: ``hook(round, resumed=bool, rank=int)`` run on every worker after every round.
        callbacks: Ray Train ``UserCallback``s for the run (e.g. one forwarding reports to Ray Tune).
        deadline: a Unix time past which boosting stops after the current round (the first at least),
            keeping the model as of its best round; one worker only (workers' clocks would disagree on
            the round to stop at, and the collective would hang).

    Example:
        >>> data = prepare(DatasetSpec(uri="data/", target="y"))  # doctest: +SKIP
        >>> result = train(data, config=TrainConfig(family="lightgbm", num_boost_round=50))  # doctest: +SKIP
        >>> result.predictor().predict(frame)  # doctest: +SKIP

    Long because of its documented arguments; the body assembles one Ray Train trainer from the
    worker spec, resources, storage and run config, and returns the result.
    """
    import ray
    from ray.train import CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig

    from app.cluster import connect, require_shared_storage

    datasets, pre, num_rows = _inputs(data, preprocessor, num_rows)
    mod = learner(config.family)
    connect()
    resources = ray.cluster_resources()
    num_workers = config.num_workers
    if mod.MAX_WORKERS is not None and num_workers > mod.MAX_WORKERS:
        logger.warning(
            "%s trains on at most %d Ray Train worker(s); ignoring num_workers=%d",
            config.family,
            mod.MAX_WORKERS,
            num_workers,
        )
        num_workers = mod.MAX_WORKERS
    if config.use_gpu:
        check_gpus(num_workers=num_workers, cluster_gpus=resources.get("GPU", 0.0))
    threads = worker_threads(
        requested_threads=config.threads_per_worker, cpus_per_worker=config.cpus_per_worker
    )
    spec = _worker_spec(
        config, pre, mod, num_workers=num_workers, num_rows=num_rows, datasets=datasets, threads=threads
    )
    spec.round_hook = round_hook
    if deadline is not None and num_workers > 1:
        raise ValueError(f"train(deadline=...) needs one worker, not num_workers={num_workers}")
    spec.deadline = deadline
    cpus = worker_cpus(
        requested=config.cpus_per_worker, num_workers=num_workers, cluster_cpus=resources.get("CPU", 1.0)
    )
    per_worker = {**config.resources_per_worker, "CPU": cpus, **({"GPU": 1} if config.use_gpu else {})}
    require_shared_storage(config.storage_path, field="train.storage_path")
    storage_path, storage_fs = _storage(config.storage_path, s3, storage_filesystem)
    trainer = mod.trainer_class()(
        mod.train_fn_per_worker,
        train_loop_config={"spec": spec},
        scaling_config=ScalingConfig(
            num_workers=num_workers,
            use_gpu=config.use_gpu,
            resources_per_worker=per_worker,
            placement_strategy=config.placement_strategy,
        ),
        run_config=RunConfig(
            name=run_name or f"{config.family}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}",
            storage_path=storage_path,
            storage_filesystem=storage_fs,
            failure_config=FailureConfig(max_failures=config.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
            callbacks=callbacks,
            # Ray sets OMP_NUM_THREADS to the floor of the worker's CPUs (at least 1); OpenMP reads it once,
            # at load: XGBoost then builds its QuantileDMatrix on one thread whatever nthread says.
            worker_runtime_env={"env_vars": {"OMP_NUM_THREADS": str(threads)}},
        ),
        datasets=datasets,
        dataset_config=DataConfig(datasets_to_split=_datasets_to_split(mod, num_workers)),
    )
    started = time.time()
    with _poll_interval(config.poll_interval_s):
        fit = trainer.fit()
    wall = time.time() - started
    return _result(fit, mod, spec, pre, num_workers=num_workers, started=started, wall=wall)


def _inputs(data, preprocessor, num_rows) -> tuple[dict, Preprocessor, int | None]:
    from app.data import PreparedData

    if isinstance(data, PreparedData):
        return (
            {"train": data.splits.train, "valid": data.splits.valid},
            data.preprocessor,
            data.profile.num_rows,
        )
    if preprocessor is None:
        raise ValueError("train() on bare datasets needs preprocessor=")
    missing = {"train", "valid"} - set(data)
    if missing:
        raise ValueError(f"datasets must include 'train' and 'valid'; missing {sorted(missing)}")
    return {"train": data["train"], "valid": data["valid"]}, preprocessor, num_rows


def _datasets_to_split(mod: Learner, num_workers: int) -> list[str]:
    """One worker reads whole datasets (no split coordinator actors to start); LightGBM and CatBoost
    workers each read the whole validation set."""
    if num_workers == 1:
        return []
    return ["train", "valid"] if mod.SPLIT_VALID else ["train"]


def _worker_spec(
    config, pre, mod, *, num_workers: int, num_rows: int | None, datasets: dict, threads: int
) -> WorkerSpec:
    if pre.task is None:
        raise ValueError("the preprocessor has no task: fit it with a target")
    metrics = resolve_metrics(config.family, pre.task, config.metrics)
    params = mod.build_params(
        task=pre.task,
        num_classes=pre.num_classes,
        objective=config.objective or mod.OBJECTIVES[pre.task],
        metrics=metrics,
        threads=threads,
        use_gpu=config.use_gpu,
        params=dict(config.params),
    )
    external = False
    if mod.EXTERNAL_MEMORY:
        budget = config.memory_budget_bytes or _default_budget()
        if num_rows is None:
            num_rows = datasets["train"].count()
        shard = estimate_shard_bytes(
            num_rows=num_rows,
            num_features=len(pre.columns),
            num_workers=num_workers,
            weighted=bool(pre.weight),
        )
        external = shard > budget
    return WorkerSpec(
        family=config.family,
        task=pre.task,
        params=params,
        num_boost_round=config.num_boost_round,
        early_stopping_rounds=config.early_stopping_rounds,
        checkpoint_every=config.checkpoint_every,
        report_every_s=config.report_every_s,
        min_report_interval_s=_min_report_interval(config),
        metrics=metrics,
        preprocessor=pre.to_dict(),
        external_memory=external,
        batch_rows=config.batch_rows,
    )


_POLL_ENV = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"


def _min_report_interval(config: TrainConfig) -> float:
    if config.min_report_interval_s is not None:
        return config.min_report_interval_s
    return float(os.environ.get(_POLL_ENV) or config.poll_interval_s or 2.0)


@contextlib.contextmanager
def _poll_interval(seconds: float | None):
    """Ray Train reads the controller's poll interval from the driver's environment at ``fit()``."""
    if seconds is None or os.environ.get(_POLL_ENV):
        yield
        return
    os.environ[_POLL_ENV] = str(seconds)
    try:
        yield
    finally:
        os.environ.pop(_POLL_ENV, None)


def _default_budget() -> int:
    import psutil

    return psutil.virtual_memory().total // 4


def _storage(storage_path: str | None, s3: S3Config | None, fs: pafs.FileSystem | None):
    if storage_path is None:
        return None, None
    from app.data.filesystem import S3Options, filesystem_for, is_s3, strip_scheme

    if fs is not None:
        return strip_scheme(storage_path), fs
    if not is_s3(storage_path):
        return str(Path(storage_path).resolve()), None
    return filesystem_for(storage_path, S3Options.from_config(s3))[::-1]


def _result(fit, mod, spec: WorkerSpec, pre, *, num_workers: int, started: float, wall: float) -> TrainResult:
    import json

    from app.train.cadence import STATE_FILE

    with tempfile.TemporaryDirectory(prefix="automl-final-") as local:
        fit.checkpoint.to_directory(local)
        state = json.loads(Path(local, STATE_FILE).read_text())
        model = mod.load(Path(local, mod.MODEL_FILE))
    primary = spec.metrics[0].name
    rounds = int(state["rounds"])
    best = int(state["best_iteration"])
    if spec.early_stopping_rounds is not None and 0 <= best < rounds - 1:
        model = mod.truncate(model, best + 1)
    else:  # without early stopping the model keeps every round: its "best" is the last one
        best = rounds - 1
    history = state["history"]
    timings = dict(state.get("timings", {}))
    worker_start = timings.pop("worker_start_unix", started)
    timings = {
        "start_s": max(worker_start - started, 0.0),
        **timings,
        "total_s": wall,
    }
    timings["teardown_s"] = max(
        wall - timings["start_s"] - timings.get("ingest_s", 0) - timings.get("train_s", 0), 0
    )
    gains = mod.importance(model, pre.columns)
    total = sum(gains.values()) or 1.0
    return TrainResult(
        family=spec.family,
        task=spec.task,
        model=model,
        preprocessor=pre,
        metric_name=primary,
        history=history,
        best_iteration=best,
        best_score=float(history[primary][best]) if history[primary] else float("nan"),
        num_rounds=rounds,
        feature_importance={k: v / total for k, v in gains.items()},
        wall_time_s=wall,
        params={k: v for k, v in spec.params.items() if _plain(v)},
        num_workers=num_workers,
        timings=timings,
        ingest=state.get("ingest", {}),
        resumed_from_round=state.get("resumed_from_round"),
        checkpoint_path=fit.checkpoint.path,
        deadline_reached=bool(state.get("deadline_reached")),
    )


def _plain(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | list | type(None))


def run_training(
    data: str | list[str],
    *,
    target: str,
    config: AppConfig,
    out_dir: str | Path,
    progress: Callable[..., None] | None = None,
) -> TrainResult:
    """Connect to Ray, prepare the data, train ``config.train.family`` and save the model to ``out_dir``.

    Checkpoints go to ``config.train.storage_path`` (``out_dir/checkpoints`` when unset). ``progress(stage,
    text)`` receives a line when the data is read and when the model is trained.

    Example:
        >>> result = run_training("data/", target="y", config=cfg, out_dir="runs/m1")  # doctest: +SKIP
        >>> result.model_dir  # doctest: +SKIP
        PosixPath('runs/m1')
    """
    from app.cluster import connect, require_shared_storage
    from app.data import DatasetSpec, inspect, prepare
    from app.train.model import save_model

    learner(config.train.family)  # an unknown family fails before any work
    out_dir = Path(out_dir)
    spec = DatasetSpec(uri=data, target=target, s3=config.data.s3)
    inspect(spec)  # footers only: a missing file or target fails before Ray starts
    connect(config.ray)
    train_config = config.train
    if train_config.storage_path is None:
        checkpoints = str((out_dir / "checkpoints").resolve())
        train_config = train_config.model_copy(update={"storage_path": checkpoints})
    require_shared_storage(train_config.storage_path, field="train.storage_path")  # before reading the data
    prepared = prepare(spec, config=config.data)
    if progress:
        progress(
            "data",
            f"{prepared.profile.num_rows:,} training rows, {len(prepared.preprocessor.columns)} features",
        )
    # The Train run is named after the model it makes (the dashboard's Train page lists runs by name),
    # and unique: a reused name would resume the old run.
    run_name = f"{out_dir.name}-{train_config.family}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    result = train(prepared, config=train_config, run_name=run_name, s3=config.data.s3)
    result.model_dir = save_model(result, out_dir)
    if progress:
        progress("train", f"{result.family}: {result.num_rounds} rounds on {result.num_workers} worker(s)")
    return result
