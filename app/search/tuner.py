"""Ray Tune over the training stage: Optuna (TPE) or random search, ASHA or FIFO, a time budget,
resumable from its storage path. Each trial reports the validation metric every few rounds.

Trials train in their own process on shared in-memory arrays (``TrialData``), or, for data over the
memory limit, on Ray Train from the streaming datasets (``StreamingData``, ``app.search.raytrain``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.search.local import TrialData, train_local
from app.search.raytrain import DRIVER_CPUS, StreamingData, ray_train_trial_fn, report_final
from app.search.settings import RayTuneSettings
from app.search.spaces import OptunaSpace, initial_points, random_space, split_config
from app.train.common import resolve_metrics

EXPERIMENT = "search"
# A report waits for the Tune driver to take it: on short trials reports cost more than boosting. Between
# ASHA rungs a trial reports at most this often (Tune stops a trial, at the time budget, when it reports).
MIN_REPORT_INTERVAL_S = 1.0


def asha_rungs(settings: dict) -> list[float]:
    """The rounds at which ASHA compares trials (its milestones with ``time_attr="rounds"``)."""
    if settings["scheduler"] != "asha":
        return []
    rungs, rung = [], settings["grace_period"] * settings["report_every"]
    while rung < settings["max_rounds"]:
        rungs.append(rung)
        rung *= settings["reduction_factor"]
    return rungs


class ReportCadence:
    """Which rounds a trial reports at: multiples of ``every`` that reach an ASHA rung not reported yet,
    or that come ``min_interval_s`` after the last report."""

    def __init__(
        self,
        every: int,
        rungs: list[float],
        *,
        min_interval_s: float = MIN_REPORT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.every, self.rungs, self.min_interval_s, self.clock = every, rungs, min_interval_s, clock
        self.last_round, self.last_time = 0, clock()

    def due(self, done: int) -> bool:
        if done % self.every:
            return False
        now = self.clock()
        rung = any(self.last_round < r <= done for r in self.rungs)
        if not rung and now - self.last_time < self.min_interval_s:
            return False
        self.last_round, self.last_time = done, now
        return True


def trial_fn(config: dict, *, data: TrialData, settings: dict, metric: str) -> None:
    """One Tune trial: boost in this process, report at ``ReportCadence``, save the model."""
    from ray import tune

    family, params = split_config(config)
    cadence = ReportCadence(settings["report_every"], asha_rungs(settings))
    threads = max(1, int(settings["cpus_per_trial"]))

    def on_round(done: int, values: dict[str, float]) -> bool:
        if cadence.due(done):
            tune.report(
                {
                    "score": values[metric],
                    "rounds": done,
                    "family": family,
                    "finished": False,
                    "trainer": "in_process",
                }
            )
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
    report_final(result, family=family, trainer="in_process")


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
    data: TrialData | StreamingData,
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
    """A fresh ``Tuner`` over ``trial_fn`` (or ``ray_train_trial_fn``) with the settings' searcher
    and scheduler.

    ``reuse_actors`` keeps one process per concurrent trial slot (Tune's default, False, starts a
    process per trial: ~2.5 s each on this machine, longer than a short trial). Ray Train trials never
    reuse actors: a stopped trial's process must go, taking its Train controller and workers with it.
    ASHA's rungs are in boosting rounds, so trials reporting at uneven rounds are judged alike.
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
            time_attr="rounds",
            # One past the last round: ASHA stops a trial whose result reaches max_t, and a trial
            # that boosts all max_rounds reports rounds == max_rounds before its final, checkpointed
            # report; stopped there, it would finish with no model.
            max_t=settings.max_rounds + 1,
            grace_period=settings.grace_period * settings.report_every,
            reduction_factor=settings.reduction_factor,
        )
    else:
        scheduler = FIFOScheduler()
    streaming = isinstance(data, StreamingData)
    return tune.Tuner(
        _trainable(data, settings, spec),
        param_space=param_space,
        tune_config=TuneConfig(
            metric="score",
            mode=spec.mode,
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=settings.num_samples,
            max_concurrent_trials=max_concurrent,
            time_budget_s=time_budget_s,
            reuse_actors=reuse_actors and not streaming,
        ),
        run_config=RunConfig(
            name=EXPERIMENT,
            storage_path=storage_path,
            # No num_to_keep: each trial saves one checkpoint, and with it Tune would snapshot the whole
            # experiment after every trial (~20% of the wall time of 100 short trials).
            checkpoint_config=CheckpointConfig(),
            failure_config=FailureConfig(max_failures=0),
            verbose=1,
        ),
    )


def restore_tuner(
    data: TrialData | StreamingData, settings: RayTuneSettings, spec: SearchSpec, *, storage_path: str
):
    """The interrupted search under ``storage_path``: finished trials are kept, the rest run again."""
    from ray import tune

    path = os.path.join(storage_path, EXPERIMENT)
    if not tune.Tuner.can_restore(path):
        raise FileNotFoundError(f"{path}: no search to resume there")
    return tune.Tuner.restore(
        path, trainable=_trainable(data, settings, spec), resume_unfinished=True, resume_errored=True
    )


def _trainable(data: TrialData | StreamingData, settings: RayTuneSettings, spec: SearchSpec):
    """The trial function with its data; a Ray Train trial reserves only its driver's share here (its
    worker's CPUs are Ray Train's placement group, sized by ``raytrain.plan``)."""
    from ray import tune

    if isinstance(data, StreamingData):
        fn, cpus = ray_train_trial_fn, DRIVER_CPUS
    else:
        fn, cpus = trial_fn, settings.cpus_per_trial
    return tune.with_resources(
        tune.with_parameters(fn, data=data, settings=settings.model_dump(), metric=spec.metric),
        {"CPU": cpus},
    )


def storage_for(out_dir: Path, settings: RayTuneSettings) -> str:
    return settings.storage_path or str((out_dir / "tune").resolve())
