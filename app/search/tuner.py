"""Ray Tune over the training stage: Optuna (TPE) or random search, ASHA or FIFO, a time budget,
resumable from its storage path. Each trial reports the validation metric every few rounds."""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.search.local import TrialData, train_local
from app.search.settings import RayTuneSettings
from app.search.spaces import OptunaSpace, initial_points, random_space, split_config
from app.train.common import resolve_metrics

EXPERIMENT = "search"


def trial_fn(config: dict, *, data: TrialData, settings: dict, metric: str) -> None:
    """One Tune trial: boost in this process, report every ``report_every`` rounds, save the model."""
    from ray import tune
    from ray.tune import Checkpoint

    from app.train.model import save_model

    family, params = split_config(config)
    every = settings["report_every"]
    threads = max(1, int(settings["cpus_per_trial"]))

    def on_round(done: int, values: dict[str, float]) -> bool:
        if done % every == 0:
            tune.report({"score": values[metric], "rounds": done, "family": family, "finished": False})
        return False

    result = train_local(
        family,
        params,
        data,
        metric=metric,
        num_boost_round=settings["max_rounds"],
        early_stopping_rounds=settings["early_stopping_rounds"],
        threads=threads,
        on_round=on_round,
    )
    with tempfile.TemporaryDirectory(prefix="automl-trial-") as tmp:
        save_model(result, tmp)
        final = {
            "score": result.best_score,
            "rounds": result.num_rounds,
            "best_iteration": result.best_iteration,
            "family": family,
            "finished": True,
        }
        tune.report(final, checkpoint=Checkpoint.from_directory(tmp))


@dataclass
class SearchSpec:
    """What a search optimises: the metric name Tune sees as ``score`` and its direction."""

    metric: str
    mode: str
    task: str


def search_spec(settings: RayTuneSettings, task: str) -> SearchSpec:
    # Direction comes from the metric's definition (the same for every family).
    m = resolve_metrics("xgboost", task, [settings.metric] if settings.metric else None)[0]
    mode = settings.mode or ("max" if m.maximize else "min")
    return SearchSpec(metric=m.name, mode=mode, task=task)


def make_tuner(
    data: TrialData,
    settings: RayTuneSettings,
    spec: SearchSpec,
    *,
    storage_path: str,
    n_rows: int,
    n_features: int,
    time_budget_s: float | None,
    max_concurrent: int,
    reuse_actors: bool = True,
):
    """A fresh ``Tuner`` over ``trial_fn`` with the settings' searcher and scheduler.

    ``reuse_actors`` keeps one process per concurrent trial slot (Tune's default, False, starts a
    process per trial: ~2.5 s each on this machine, longer than a short trial).
    """
    from ray import tune
    from ray.tune import CheckpointConfig, FailureConfig, RunConfig, TuneConfig
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter

    families = settings.families
    if settings.search_algorithm == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        searcher = ConcurrencyLimiter(
            OptunaSearch(
                space=OptunaSpace(families, n_rows, n_features, spec.task),
                metric="score",
                mode=spec.mode,
                points_to_evaluate=initial_points(families, n_rows, n_features, spec.task),
                seed=settings.seed,
            ),
            max_concurrent=max_concurrent,
        )
        param_space: dict[str, Any] = {}
    else:
        searcher = BasicVariantGenerator(random_state=settings.seed, max_concurrent=max_concurrent)
        param_space = random_space(families, n_rows, n_features, spec.task)
    if settings.scheduler == "asha":
        scheduler = ASHAScheduler(
            time_attr="training_iteration",
            max_t=math.ceil(settings.max_rounds / settings.report_every) + 1,
            grace_period=settings.grace_period,
            reduction_factor=settings.reduction_factor,
        )
    else:
        scheduler = FIFOScheduler()
    trainable = tune.with_resources(
        tune.with_parameters(trial_fn, data=data, settings=settings.model_dump(), metric=spec.metric),
        {"CPU": settings.cpus_per_trial},
    )
    return tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=TuneConfig(
            metric="score",
            mode=spec.mode,
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=settings.num_samples,
            max_concurrent_trials=max_concurrent,
            time_budget_s=time_budget_s,
            reuse_actors=reuse_actors,
        ),
        run_config=RunConfig(
            name=EXPERIMENT,
            storage_path=storage_path,
            checkpoint_config=CheckpointConfig(num_to_keep=1),
            failure_config=FailureConfig(max_failures=0),
            verbose=1,
        ),
    )


def restore_tuner(data: TrialData, settings: RayTuneSettings, spec: SearchSpec, *, storage_path: str):
    """The interrupted search under ``storage_path``: finished trials are kept, the rest run again."""
    from ray import tune

    path = os.path.join(storage_path, EXPERIMENT)
    if not tune.Tuner.can_restore(path):
        raise FileNotFoundError(f"{path}: no search to resume there")
    trainable = tune.with_resources(
        tune.with_parameters(trial_fn, data=data, settings=settings.model_dump(), metric=spec.metric),
        {"CPU": settings.cpus_per_trial},
    )
    return tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True, resume_errored=True)


def storage_for(out_dir: Path, settings: RayTuneSettings) -> str:
    return settings.storage_path or str((out_dir / "tune").resolve())
