"""Search trials on Ray Train, for data over ``in_memory_limit_bytes``: each trial is a driver function
that builds and fits one Ray Train run over the streaming datasets and forwards its reports to Tune.

Under Train V2 a trainer cannot be Tune's trainable (``Tuner(trainer)`` raises); the driver-function
trainable is its way. Workers report every ``report_every`` rounds, but never closer together than the
controller's poll interval (``app.train.cadence.Cadence``), so on fast rounds reports thin out: ASHA
therefore counts boosting rounds (``time_attr="rounds"``), not reports, and a trial is judged at the
first report at or past each rung.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.config import SearchConfig
from app.search.spaces import split_config

if TYPE_CHECKING:
    from app.config import DataConfig
    from app.data import PreparedData
    from app.search.inprocess import ValidRows

# Ray Train trials choose the ensemble on at most this many validation rows (or the memory limit's worth).
ENSEMBLE_VALID_ROWS = 50_000

# The trial's own actor only waits on ``fit()``; Tune refuses 0 CPUs.
DRIVER_CPUS = 0.01


@dataclass
class StreamingData:
    """The lazy training and validation datasets every Ray Train trial streams from."""

    train: Any  # ray.data.Dataset
    valid: Any
    preprocessor: dict
    n_train: int
    n_valid: int  # counted when the engine read the whole split, else estimated from the split fractions
    n_features: int
    worker_cpus: float
    threads: int


def plan(*, cluster_cpus: float, cpus_per_trial: float, max_concurrent: int | None) -> tuple[int, float]:
    """Concurrent Ray Train trials and the CPUs of each one's worker.

    One CPU stays free for Ray Data's read tasks, which need a whole CPU each (on 2 CPUs, two 1-CPU
    workers hang in ReadFiles): on 2 CPUs two trials get 0.49 CPU each.
    """
    concurrent = max_concurrent or max(1, int(cluster_cpus // cpus_per_trial))
    spare = max(cluster_cpus - 1.0, cluster_cpus / 2)
    worker = min(cpus_per_trial, spare / concurrent - DRIVER_CPUS)
    if worker < 0.05:  # more trials asked for than the spare CPUs can hold: fewer, not starved
        concurrent = max(1, int(spare // 0.1))
        worker = spare / concurrent - DRIVER_CPUS
    return concurrent, round(worker, 3)


def trial_train_config(
    family: str,
    params: dict[str, Any],
    *,
    settings: SearchConfig,
    metric: str,
    cpus: float,
    threads: int,
    storage: str,
):
    """The ``TrainConfig`` of one trial: one worker, the trial's parameters and the search's rounds."""
    from app.config import TrainConfig

    return TrainConfig(
        family=family,
        params=params,
        num_boost_round=settings.max_rounds,
        early_stopping_rounds=settings.early_stopping_rounds,
        checkpoint_every=settings.report_every,
        report_every_s=None,
        num_workers=1,
        cpus_per_worker=cpus,
        threads_per_worker=threads,
        metrics=[metric],
        max_failures=0,
        storage_path=storage,
    )


def report_forwarder(queue, *, family: str, metric: str):
    """A Ray Train callback (it runs in the Train controller) putting each worker report on ``queue`` as
    the trial's ``score`` and ``rounds``; the worker's final report is left out (the trial reports it
    with the model)."""
    from ray.train import UserCallback

    class ForwardReports(UserCallback):
        def after_report(self, run_context, metrics, checkpoint) -> None:
            first = metrics[0]
            if first.get("final") or metric not in first:
                return
            queue.put(
                {
                    "score": first[metric],
                    "rounds": first["round"],
                    "family": family,
                    "finished": False,
                    "trainer": "ray_train",
                }
            )

    return ForwardReports()


def fit_reporting(fit: Callable[[list[Any]], Any], *, family: str, metric: str) -> Any:
    """Run ``fit(callbacks)`` (a Ray Train run) in a helper thread while this, the trial's own thread,
    hands its reports to Tune; returns what ``fit`` returned.

    Every ``tune.report`` then comes from the trial's thread. Ray's ``TuneReportCallback`` instead hands
    reports to the trial's main thread, which deadlocks when a last report is still queued as the
    function itself reports (or returns): both land in the session's one-item result queue.
    """
    from ray import tune
    from ray.util.queue import Queue

    queue = Queue(actor_options={"num_cpus": 0})
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = fit([report_forwarder(queue, family=family, metric=metric)])
        except BaseException as exc:  # noqa: BLE001 - re-raised in the trial's thread
            outcome["error"] = exc
        finally:
            queue.put(None)

    thread = threading.Thread(target=run, name="ray-train-fit", daemon=True)
    thread.start()
    while (report := queue.get()) is not None:
        tune.report(report)  # ASHA may stop the trial here: the process then goes, and the run with it
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def report_final(
    result: Any, store: Any, *, family: str, trainer: str, extra: dict[str, float] | None = None
) -> None:
    """A trial's last report: its model persisted first as the trial's candidate (``store``, a
    ``CandidateStore``: a trial stopped while it reports keeps it), then its scores (``extra``: the
    leaderboard's other metrics) and whether the deadline ended it.

    ``done`` ends the trial on this result: one driver round trip fewer per trial.
    """
    from ray import tune

    from app.search.candidates import run_hook

    final = {
        "score": result.best_score,
        "rounds": result.num_rounds,
        "best_iteration": result.best_iteration,
        "family": family,
        "finished": True,
        "trainer": trainer,
        "train_s": result.wall_time_s,
        "deadline_reached": result.deadline_reached,
        **(extra or {}),
    }
    final["persist_s"] = store.persist(result, final=True, extra=extra)
    run_hook("report", done=result.num_rounds, trial_id=store.trial_id)
    tune.report({**final, "candidate": store.version, "done": True})


def ray_train_trial_fn(
    config: dict, *, data: StreamingData, settings: SearchConfig, metric: str, deadline: float | None = None
) -> None:
    """One Tune trial on Ray Train: fit (until ``deadline``, a Unix time, at the latest), forward
    reports, then report the saved model as the checkpoint.

    The Ray Train run is named after the trial and kept in the trial's folder of the search's storage,
    so a resumed search continues an interrupted trial from its last Train checkpoint.
    """
    from ray import tune

    from app.data.encode import Preprocessor
    from app.search.candidates import CandidateStore
    from app.train.api import train

    family, params = split_config(config)
    ctx = tune.get_context()
    # The trial's folder in the search's storage (on S3, say), not its node-local copy: on a cluster the
    # Train workers checkpoint from other nodes, and a resumed trial may run elsewhere.
    storage = ctx.get_storage()
    fs, path = storage.storage_filesystem, os.path.join(storage.trial_fs_path, "ray_train")
    local = fs.type_name == "local"
    train_config = trial_train_config(
        family,
        params,
        settings=settings,
        metric=metric,
        cpus=data.worker_cpus,
        threads=data.threads,
        storage=path if local else f"{fs.type_name}://{path}",
    )
    result = fit_reporting(
        lambda callbacks: train(
            {"train": data.train, "valid": data.valid},
            config=train_config,
            preprocessor=Preprocessor.from_dict(data.preprocessor),
            num_rows=data.n_train,
            run_name=f"trial-{ctx.get_trial_id()}",
            callbacks=callbacks,
            deadline=deadline,
            storage_filesystem=None if local else fs,
        ),
        family=family,
        metric=metric,
    )
    report_final(result, CandidateStore.for_trial(), family=family, trainer="ray_train")


def streaming_data(
    prepared: PreparedData, settings: SearchConfig, data_config: DataConfig, *, worker_cpus: float
) -> tuple[StreamingData, ValidRows]:
    """Ray Train trials' data, and the validation rows the ensemble is chosen on (a bounded head)."""
    from app.search import budget
    from app.search.inprocess import encode_rows

    pre = prepared.preprocessor
    row_bytes = 4 * (len(pre.columns) + 1)
    cap = max(ENSEMBLE_VALID_ROWS, settings.in_memory_limit_bytes // row_bytes)
    valid = encode_rows(prepared.splits.valid, pre, max_rows=cap)
    n_train = prepared.profile.num_rows
    data = StreamingData(
        train=prepared.splits.train,
        valid=prepared.splits.valid,
        preprocessor=pre.to_dict(),
        n_train=n_train,
        n_valid=len(valid.y) if len(valid.y) < cap else budget.valid_rows(n_train, data_config),
        n_features=len(pre.columns),
        worker_cpus=worker_cpus,
        threads=max(1, int(settings.cpus_per_trial)),
    )
    return data, valid
