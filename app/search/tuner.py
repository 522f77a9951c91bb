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

from app.config import SearchConfig
from app.search.budget import SearchWindow
from app.search.inprocess import PAUSE, Round, TrialData, predict_encoded, train_local
from app.search.raytrain import DRIVER_CPUS, StreamingData, ray_train_trial_fn, report_final
from app.search.settings import RayTuneSettings
from app.search.spaces import ROWS, OptunaSpace, initial_points, split_config
from app.train.metrics import BOARD_METRICS, default_metric, get_metric

EXPERIMENT = "search"
# A report waits for the Tune driver to take it: on short trials reports cost more than boosting. Between
# ASHA rungs a trial reports at most this often (Tune stops a trial, at the time budget, when it reports).
MIN_REPORT_INTERVAL_S = 1.0
# Tune's own time budget, past the moment HardStop ends the trials still running: reached only when a
# kill did not end a trial.
TUNE_AFTER_HARD_STOP_S = 10.0


def asha_rungs(settings: SearchConfig) -> list[float]:
    """The rounds at which ASHA compares trials (its milestones with ``time_attr="rounds"``)."""
    if settings.scheduler != "asha":
        return []
    rungs, rung = [], asha_grace(settings)
    while rung < settings.max_rounds:
        rungs.append(rung)
        rung *= settings.reduction_factor
    return rungs


def asha_grace(settings: SearchConfig) -> int:
    """ASHA's grace period in rounds: ``grace_period`` reports, but never past ``max_t`` (ASHA refuses a
    grace period over it, which a small ``max_rounds`` would otherwise give)."""
    return min(settings.grace_period * settings.report_every, settings.max_rounds + 1)


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
        self.at_rung = False  # whether the report now due reaches a rung (ASHA may stop the trial there)

    def due(self, done: int) -> bool:
        if done % self.every:
            return False
        now = self.clock()
        rung = any(self.last_round < r <= done for r in self.rungs)
        if not rung and now - self.last_time < self.min_interval_s:
            return False
        self.last_round, self.last_time, self.at_rung = done, now, rung
        return True


def trial_fn(
    config: dict, *, data: TrialData, settings: SearchConfig, metric: str, deadline: float | None = None
) -> None:
    """One Tune trial: boost in this process, report at ``ReportCadence``, persist its best model so far
    before the reports that may stop it (``app.search.candidates``) and its final model before the last
    report; past ``deadline`` (a Unix time) it stops after the current round with the model it has."""
    from ray import tune

    from app.search.candidates import CandidateStore, PersistPolicy

    family, params = split_config(config)
    if config.get(ROWS):  # a row ladder's sample (app.search.ladder): a view of the shared rows
        data = data.head(int(config[ROWS]))
    cadence = ReportCadence(settings.report_every, asha_rungs(settings))
    store, policy = CandidateStore.for_trial(), PersistPolicy()
    threads = max(1, int(settings.cpus_per_trial))

    pending: list[bool] = []  # a report put off until CatBoost hands its model over (``Round``)

    def on_round(r: Round) -> bool | str:
        if pending or cadence.due(r.done):
            rung = pending.pop() if pending else cadence.at_rung
            if policy.due(r.best_iteration, rung=rung):
                if r.snapshot is None:
                    pending.append(rung)
                    return PAUSE
                policy.record(r.best_iteration, store.persist(r.snapshot(), final=False))
            tune.report(
                {
                    "score": r.values[metric],
                    "rounds": r.done,
                    "family": family,
                    "finished": False,
                    "trainer": "in_process",
                    "persist_s": policy.cost_s,
                }
            )
        return False

    result = train_local(
        family,
        params,
        data,
        metric=metric,
        num_boost_round=settings.max_rounds,
        early_stopping_rounds=settings.early_stopping_rounds,
        threads=threads,
        on_round=on_round,
        deadline=deadline,
    )
    report_final(result, store, family=family, trainer="in_process", extra=board_scores(result, data))


def board_scores(result: Any, data: TrialData) -> dict[str, float]:
    """The leaderboard's scores beside the search metric (``BOARD_METRICS``) on the validation rows, and
    ``predict_s``: the seconds predicting them took (what choosing this model will cost the driver)."""
    started = time.monotonic()
    pred = predict_encoded(result.family, result.model, result.preprocessor, data.x_valid)
    scores = {"predict_s": time.monotonic() - started}
    for n in BOARD_METRICS.get(result.task, []):
        if n != result.metric_name:
            scores[n] = get_metric(n).score(data.y_valid, pred, data.w_valid)
    return scores


@dataclass
class SearchSpec:
    """What a search optimises: the metric name Tune sees as ``score`` and its direction."""

    metric: str
    mode: str
    task: str


def search_spec(settings: RayTuneSettings, task: str) -> SearchSpec:
    """The metric searched on (the task's default unless named) and its direction (its own unless
    ``settings.mode`` says otherwise)."""
    m = get_metric(settings.metric) if settings.metric else default_metric(task)
    return SearchSpec(metric=m.name, mode=settings.mode or m.mode, task=task)


def make_tuner(
    data: TrialData | StreamingData,
    settings: RayTuneSettings,
    spec: SearchSpec,
    *,
    storage_path: str,
    n_rows: int,
    n_features: int,
    window: SearchWindow | None,
    max_concurrent: int,
    reuse_actors: bool = True,
    progress: Callable[..., None] | None = None,
    ladder: list[int] | None = None,
):
    """A fresh ``Tuner`` over ``trial_fn`` (or ``ray_train_trial_fn``) with the settings' searcher
    and scheduler, ending at ``window``'s deadline when there is one.

    ``reuse_actors`` keeps one process per concurrent trial slot (Tune's default, False, starts a
    process per trial, whose start is longer than a short trial). Ray Train trials never
    reuse actors: a stopped trial's process must go, taking its Train controller and workers with it.
    ASHA's rungs are in boosting rounds, so trials reporting at uneven rounds are judged alike.
    With ``ladder`` (``app.search.ladder``: the rows of each rung) new configurations train on samples
    and climb to more rows, and ASHA judges a trial only against trials on as many rows.
    With ``progress`` (``app.search.progress``) Tune prints nothing and the search is one progress line.

    Long on purpose: it is the one place that assembles the searcher, the scheduler and the Tuner's
    configs from the settings, so that they agree.
    """
    from ray import tune
    from ray.tune import CheckpointConfig, FailureConfig, RunConfig, TuneConfig
    from ray.tune.schedulers import FIFOScheduler
    from ray.tune.search.optuna import OptunaSearch

    from app.search.budget import end_seconds
    from app.search.deadline import ChoiceMeter, DeadlineLimiter, HardStop, RecordingASHA
    from app.search.fairness import BracketASHA, FamilyShareSearch
    from app.search.ladder import RowLadder

    families = settings.families
    points = initial_points(
        families, n_rows, n_features, spec.task, settings.portfolio, trials=settings.num_samples
    )
    if settings.search_algorithm == "optuna":
        how: dict[str, Any] = {"points_to_evaluate": points, "seed": settings.seed}
    else:  # the same conditional space, sampled at random
        import optuna

        how = {"sampler": optuna.samplers.RandomSampler(seed=settings.seed)}
    space = OptunaSpace(families, n_rows, n_features, spec.task)
    if settings.family_fairness:
        fair = {"families": families, "initial": len(how.get("points_to_evaluate", []))}
        optuna_search = FamilyShareSearch(space=space, metric="score", mode=spec.mode, **how, **fair)
    else:
        optuna_search = OptunaSearch(space=space, metric="score", mode=spec.mode, **how)
    inner = optuna_search if ladder is None else RowLadder(optuna_search, ladder=ladder)
    searcher = DeadlineLimiter(inner, max_concurrent=max_concurrent)
    searcher.follow(window)
    if settings.scheduler == "asha":
        keys = (("family",) if settings.family_fairness else ()) + (("rows",) if ladder else ())
        scheduler = (BracketASHA if keys else RecordingASHA)(
            **({"keys": keys} if keys else {}),
            time_attr="rounds",
            # One past the last round: ASHA stops a trial whose result reaches max_t, and a trial
            # that boosts all max_rounds reports rounds == max_rounds before its final, checkpointed
            # report; stopped there, it would finish with no model.
            max_t=settings.max_rounds + 1,
            grace_period=asha_grace(settings),
            reduction_factor=settings.reduction_factor,
        )
    else:
        scheduler = FIFOScheduler()
    streaming = isinstance(data, StreamingData)
    timed = window is not None and not streaming
    callbacks: list[Any] = [] if progress is None else [_progress(progress, settings, spec, window)]
    if timed:
        hard_stop = HardStop(HardStop.at_end_of(window))
        meter = ChoiceMeter(
            searcher,
            hard_stop,
            kept_s=end_seconds(settings.time_budget_s, data),
            slack_s=window.backstop_s - window.seconds,
            members=settings.ensemble_size,
        )
        callbacks += [hard_stop, meter]
    if callbacks:
        # Given callbacks, Tune's usage tagging imports mlflow (ray.air.integrations.mlflow) in fit():
        # imported here, on the driver's main thread before the tracker's warm-up thread imports it too
        # (two threads importing one package at once fail with "deadlock detected by _ModuleLock"; a
        # retraining job's fit, with the deadline's callbacks and no progress line, failed so in CI).
        import ray.air.integrations.mlflow  # noqa: F401
    return tune.Tuner(
        _trainable(data, settings, spec, deadline=window.deadline if window else None),
        tune_config=TuneConfig(
            metric="score",
            mode=spec.mode,
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=settings.trials,
            max_concurrent_trials=max_concurrent,
            # Ray Train trials have no driver-trained fallback (app.search.fallback): none is stopped early.
            # Only if HardStop's kills did not end the search: Tune then stops what is left itself.
            time_budget_s=window.backstop_s + TUNE_AFTER_HARD_STOP_S if timed else None,
            reuse_actors=reuse_actors and not streaming,
        ),
        run_config=RunConfig(
            name=EXPERIMENT,
            storage_path=storage_path,
            # No num_to_keep: each trial saves one checkpoint, and with it Tune would snapshot the whole
            # experiment after every trial (a large share of the wall time of many short trials).
            checkpoint_config=CheckpointConfig(),
            failure_config=FailureConfig(max_failures=0),
            verbose=1 if progress is None else 0,
            callbacks=callbacks or None,
        ),
    )


def _progress(progress: Callable[..., None], settings: RayTuneSettings, spec: SearchSpec, window):
    from app.search.progress import SearchProgress

    deadline = window.deadline if window else None
    return SearchProgress(
        progress, metric=spec.metric, mode=spec.mode, trials=settings.trials, deadline=deadline
    )


def restore_tuner(
    data: TrialData | StreamingData,
    settings: RayTuneSettings,
    spec: SearchSpec,
    *,
    storage_path: str,
    window: SearchWindow | None,
):
    """The interrupted search under ``storage_path``: finished trials are kept, the rest run again, until
    ``window``'s deadline (the resumed fit's) when there is one."""
    from ray import tune

    from app.search.deadline import ChoiceMeter, DeadlineLimiter, HardStop

    path = os.path.join(storage_path, EXPERIMENT)
    if not tune.Tuner.can_restore(path):
        raise FileNotFoundError(f"{path}: no search to resume there")
    deadline = window.deadline if window else None
    tuner = tune.Tuner.restore(
        path,
        trainable=_trainable(data, settings, spec, deadline=deadline),
        resume_unfinished=True,
        resume_errored=True,
    )
    # Tuner.restore takes no TuneConfig or RunConfig: the searcher and the callbacks come back from the
    # saved Tuner, with the interrupted fit's deadline, long past (the meter last: it starts from both).
    local = tuner._local_tuner
    searcher = local._tune_config.search_alg
    if isinstance(searcher, DeadlineLimiter):
        searcher.follow(window)
    callbacks = local._run_config.callbacks or []
    if callbacks:  # as in make_tuner: before the tracker's warm-up thread imports mlflow
        import ray.air.integrations.mlflow  # noqa: F401
    for callback in callbacks:
        if isinstance(callback, HardStop):
            callback.follow(window)
    for callback in callbacks:
        if isinstance(callback, ChoiceMeter):
            callback.follow()
    return tuner


def ended_early(tuner) -> tuple[set[str], set[str]]:
    """The trials the search's ASHA stopped (none under FIFO), and those ``HardStop`` cut."""
    from app.search.deadline import HardStop

    local = tuner._local_tuner
    stopped = set(getattr(local._tune_config.scheduler, "stopped", ()))
    cut = set()
    for callback in local._run_config.callbacks or []:
        if isinstance(callback, HardStop):
            cut |= callback.cut
    return stopped, cut


def _trainable(
    data: TrialData | StreamingData, settings: RayTuneSettings, spec: SearchSpec, *, deadline: float | None
):
    """The trial function with its data and deadline; a Ray Train trial reserves only its driver's share
    here (its worker's CPUs are Ray Train's placement group, sized by ``raytrain.plan``)."""
    from ray import tune

    if isinstance(data, StreamingData):
        fn, cpus = ray_train_trial_fn, DRIVER_CPUS
    else:
        fn, cpus = trial_fn, settings.cpus_per_trial
    return _named_trial(
        tune.with_resources(
            tune.with_parameters(fn, data=data, settings=settings, metric=spec.metric, deadline=deadline),
            {"CPU": cpus},
        )
    )


TRIAL_CLASS = "AutoMLTrial"


def _named_trial(trainable: Any) -> type:
    """Tune's trial class for the function ``trainable`` under a name the dashboard shows: its actors are
    listed by class, and Tune's own wrapper class is called ``ImplicitFunc`` whatever it runs."""
    from ray.tune.trainable.function_trainable import wrap_function

    wrapped = wrap_function(trainable)
    return type(TRIAL_CLASS, (wrapped,), {"__qualname__": TRIAL_CLASS})


def storage_for(out_dir: Path, settings: RayTuneSettings) -> str:
    return settings.storage_path or str((out_dir / "tune").resolve())
