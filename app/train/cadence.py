"""Reporting that does not throttle training: metrics and a checkpoint every N rounds or T seconds.

Under Train V2 a worker's report queue holds one item and the controller drains it every
``RAY_TRAIN_HEALTH_CHECK_INTERVAL_S`` (2 s), so a report per round caps training near one round per 2 s.
Here rank 0 picks the rounds to report at (every ``checkpoint_every`` rounds, sooner when
``report_every_s`` passed, never closer than ``min_report_interval_s``) and broadcasts the choice, so
every worker reports at the same rounds, and uploads run in Ray Train's background thread (ASYNC).
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app import atomic
from app.train.metrics import NativeMetric
from app.train.result import WorkerSpec

STATE_FILE = "state.json"


class Cadence:
    """Which rounds report: identical on every worker because only the leader decides.

    Decisions happen at "decision points" only (every few rounds), where the leader measures seconds
    per round and ``broadcast`` (``ray.train.collective.broadcast_from_rank_zero``) shares its answer.
    """

    def __init__(
        self,
        *,
        every_rounds: int,
        every_s: float | None,
        min_interval_s: float,
        start_round: int = 0,
        leader: bool = True,
        broadcast: Callable[[Any], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._every, self._every_s, self._min_s = every_rounds, every_s, min_interval_s
        self._leader, self._broadcast, self._clock = leader, broadcast, clock
        now = clock()
        self._t_point = self._t_report = now
        self._r_point = start_round
        # Probe after one round when there is a time cap: it needs the seconds per round.
        self.next_round = start_round + (1 if every_s else every_rounds)

    def due(self, done: int) -> bool:
        """True when the workers report after ``done`` rounds."""
        if done < self.next_round:
            return False
        decision = self._decide(done) if self._leader else None
        if self._broadcast is not None:
            decision = self._broadcast(decision)
        report, interval = decision
        self.next_round = done + interval
        return report

    def _decide(self, done: int) -> tuple[bool, int]:
        now = self._clock()
        per_round = max((now - self._t_point) / max(done - self._r_point, 1), 1e-6)
        self._t_point, self._r_point = now, done
        since = now - self._t_report
        if since < self._min_s:  # too soon after the last report: wait until the interval has passed
            return False, max(1, math.ceil((self._min_s - since) / per_round))
        self._t_report = now
        want = self._every
        if self._every_s:
            want = min(want, max(1, int(self._every_s / per_round)))
        return True, max(1, want, math.ceil(self._min_s / per_round))


class Stopper:
    """Early stopping on the first validation metric, restartable from a recorded history."""

    def __init__(self, metric: NativeMetric, patience: int | None) -> None:
        self.metric, self.patience = metric, patience
        self.best_iteration, self.best_score = -1, math.nan
        self.stopped = False

    def update(self, iteration: int, value: float) -> bool:
        if not math.isnan(value) and (
            self.best_iteration < 0
            or (value > self.best_score if self.metric.maximize else value < self.best_score)
        ):
            self.best_iteration, self.best_score = iteration, value
        if self.patience is not None and iteration - self.best_iteration >= self.patience:
            self.stopped = True
        return self.stopped


@dataclass
class Resume:
    """What a restarted worker restores: the checkpoint's model file and the run state up to it."""

    model_path: Path
    state: dict


def load_resume(model_file: str) -> Resume | None:
    """The latest checkpoint of this run (after a worker failure), copied to a local directory."""
    import ray.train

    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return None
    local = Path(tempfile.mkdtemp(prefix="automl-resume-"))
    checkpoint.to_directory(str(local))
    return Resume(model_path=local / model_file, state=json.loads((local / STATE_FILE).read_text()))


@dataclass
class Reporter:
    """Per-round bookkeeping on a worker: history, early stopping, throttled reports and checkpoints."""

    spec: WorkerSpec
    rank: int
    world_size: int
    save_model: Callable[[Any, Path], None]
    start_round: int = 0
    resume: Resume | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        import ray.train.collective

        spec = self.spec
        old = self.resume.state["history"] if self.resume else {}
        self.history = {m.name: list(old.get(m.name, []))[: self.start_round] for m in spec.metrics}
        self.stopper = Stopper(spec.metrics[0], spec.early_stopping_rounds)
        for i, value in enumerate(self.history[spec.metrics[0].name]):
            self.stopper.update(i, value)
        broadcast = ray.train.collective.broadcast_from_rank_zero if self.world_size > 1 else None
        self.cadence = Cadence(
            every_rounds=spec.checkpoint_every,
            every_s=spec.report_every_s,
            min_interval_s=spec.min_report_interval_s,
            start_round=self.start_round,
            leader=self.rank == 0,
            broadcast=broadcast,
        )
        self.reports = 0
        self.deadline_reached = False

    @property
    def resumed(self) -> bool:
        return self.resume is not None

    def after_round(self, model: Any, done: int, native: dict[str, float]) -> bool:
        """Record round ``done`` (1-based count) from the library's metric values; True means stop."""
        for m in self.spec.metrics:
            self.history[m.name].append(m.value(native[m.native]))
        stop = self.stopper.update(done - 1, self.history[self.spec.metrics[0].name][-1])
        if not stop and self.spec.deadline is not None and time.time() >= self.spec.deadline:
            # The stopper's flag too: a family's boosting loop may test it rather than the return value.
            stop = self.deadline_reached = self.stopper.stopped = True
        if self.spec.round_hook is not None:
            self.spec.round_hook(done, resumed=self.resumed, rank=self.rank)
        if not stop and done < self.spec.num_boost_round and self.cadence.due(done):
            self.report(model, done, final=False)
        return stop

    def report(self, model: Any, done: int, *, final: bool) -> None:
        """``ray.train.report`` on every rank; rank 0 attaches the model and the run state."""
        import ray.train

        metrics: dict[str, Any] = {"round": done, "final": final}
        metrics.update({k: v[-1] for k, v in self.history.items() if v})
        metrics["best_iteration"] = self.stopper.best_iteration
        checkpoint = None
        if self.rank == 0:
            local = Path(tempfile.mkdtemp(prefix="automl-ckpt-"))
            self.save_model(model, local)
            atomic.write_json(local / STATE_FILE, self.state(done, final=final), indent=None)
            checkpoint = ray.train.Checkpoint.from_directory(str(local))
        ray.train.report(
            metrics, checkpoint=checkpoint, checkpoint_upload_mode=ray.train.CheckpointUploadMode.ASYNC
        )
        self.reports += 1

    def state(self, done: int, *, final: bool) -> dict[str, Any]:
        resumed_from = self.resume.state["rounds"] if self.resume else None
        return {
            "family": self.spec.family,
            "rounds": done,
            "final": final,
            "history": self.history,
            "best_iteration": self.stopper.best_iteration,
            "best_score": self.stopper.best_score,
            "stopped_early": self.stopper.stopped and not self.deadline_reached,
            "deadline_reached": self.deadline_reached,
            "resumed_from_round": resumed_from,
            "reports": self.reports + 1,
            **self.info,
        }


class WorkerRun:
    """What every family's Ray Train worker does around its own ingestion and boosting: read the spec,
    the preprocessor and the checkpoint to resume from; make the reporter once the data is in; time the
    stages and send the final report."""

    def __init__(self, config: dict, model_file: str, load: Callable[[Path], Any]) -> None:
        import ray.train

        from app.data.encode import Preprocessor

        self.started = time.time()
        self.spec: WorkerSpec = config["spec"]
        ctx = ray.train.get_context()
        self.rank, self.world_size = ctx.get_world_rank(), ctx.get_world_size()
        self.preprocessor = Preprocessor.from_dict(self.spec.preprocessor)
        self.resume = load_resume(model_file)
        self.init = load(self.resume.model_path) if self.resume else None
        self._ingest_from = time.perf_counter()

    def reporter(
        self, *, ingest: dict[str, Any], start_round: int, save_model: Callable[[Any, Path], None]
    ) -> Reporter:
        """The run's reporter, made once the data is in (which ends the ingestion's timing)."""
        self.ingest, self._train_from = ingest, time.perf_counter()
        self._reporter = Reporter(
            spec=self.spec,
            rank=self.rank,
            world_size=self.world_size,
            save_model=save_model,
            start_round=start_round,
            resume=self.resume,
        )
        return self._reporter

    def finish(self, model: Any, rounds: int) -> None:
        """The final report: the model after ``rounds`` rounds, with the ingestion and the timings."""
        now = time.perf_counter()
        self._reporter.info = {
            "ingest": self.ingest,
            "timings": {
                "worker_start_unix": self.started,
                "ingest_s": self._train_from - self._ingest_from,
                "train_s": now - self._train_from,
            },
        }
        self._reporter.report(model, rounds, final=True)
