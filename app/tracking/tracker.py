"""MLflow tracking of AutoML runs: a parent run per AutoML run, a nested child per trial, metrics sent in
``log_batch`` calls, models logged with their flavour and as a pyfunc pipeline, and an offline journal
under ``RUN_DIR/mlruns-pending/`` whenever the tracking server cannot be reached.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.config import TrackingConfig
from app.redact import redact_text
from app.tracking.artifacts import ArtifactLogging
from app.tracking.batch import MAX_BATCH, log_batch_chunked, param_value, run_status, strings
from app.tracking.health import (
    TrackingOfflineWarning,
    TrackingUnavailableError,
    is_unreachable,
    server_answers,
)
from app.tracking.pending import PendingRun, pending_root
from app.tracking.tags import FAMILY_TAG, KIND_TAG, PARENT_TAG, TRIAL_STATUS_TAG
from app.tracking.trials import TrialLogging

__all__ = [
    "FAMILY_TAG",
    "KIND_TAG",
    "PARENT_TAG",
    "TRIAL_STATUS_TAG",
    "MLflowTracker",
    "TrackingOfflineWarning",
    "TrackingUnavailableError",
]

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    from app.config import AppConfig

log = logging.getLogger(__name__)

MLflowConfig = TrackingConfig  # the deployment guide's name for the same settings


@dataclass
class _Run:
    run_id: str
    name: str | None
    parent_id: str | None
    pending: PendingRun | None = None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: list[tuple[str, float, int, int]] = field(default_factory=list)
    last_flush: float = field(default_factory=time.monotonic)


class MLflowTracker(ArtifactLogging, TrialLogging):
    """Logs AutoML runs to the MLflow server of ``config`` through its own ``MlflowClient``.

    ``tracking_uri=None`` uses an embedded SQLite store at ``RUN_DIR/mlflow.db`` with artifacts under
    ``RUN_DIR/mlartifacts``. Params, tags and metrics are buffered and sent with ``log_batch`` (at
    ``end_run``, on ``flush()``, or every ``flush_every`` values / ``flush_interval_s`` seconds). If the
    server is unreachable the run goes on: everything is journaled under ``RUN_DIR/mlruns-pending/``, one
    ``TrackingOfflineWarning`` says so, and ``sync_pending`` (``automl track sync RUN_DIR``) uploads it.

    Example:
        >>> tracker = MLflowTracker(MLflowConfig(tracking_uri="http://mlflow:5000", experiment_name="e"))
        >>> run_id = tracker.start_run(run_name="xgboost-optimization")  # doctest: +SKIP
        >>> tracker.log_params({"max_depth": 8})  # doctest: +SKIP
        >>> tracker.log_metrics({"val_score": 0.92})  # doctest: +SKIP
        >>> tracker.end_run()  # doctest: +SKIP
        >>> tracker.get_best_run(metric="val_score").info.run_id  # doctest: +SKIP
    """

    def __init__(
        self,
        config: TrackingConfig | None = None,
        *,
        run_dir: str | Path | None = None,
        client: MlflowClient | None = None,
        flush_every: int = MAX_BATCH,
        flush_interval_s: float = 10.0,
        probe_interval_s: float = 5.0,
    ) -> None:
        self.config = config or TrackingConfig()
        self.run_dir = Path(run_dir) if run_dir is not None else Path.cwd()
        self.flush_every, self.flush_interval_s = flush_every, flush_interval_s
        self.probe_interval_s = probe_interval_s
        self._last_ok = float("-inf")
        self._client = client
        self._experiment_id: str | None = None
        self._stack: list[_Run] = []
        self._lock = threading.RLock()
        self.offline = False
        self._warned = False

    @classmethod
    def from_app_config(cls, config: AppConfig, *, run_dir: str | Path | None = None) -> MLflowTracker:
        return cls(config.tracking, run_dir=run_dir)

    # -- where things go -------------------------------------------------------------------------

    @property
    def tracking_uri(self) -> str:
        if self.config.tracking_uri:
            return self.config.tracking_uri
        return f"sqlite:///{(self.run_dir / 'mlflow.db').resolve()}"

    @property
    def display_uri(self) -> str:
        """The tracking URI as messages and run records show it: a password in it masked."""
        return redact_text(self.tracking_uri)

    @property
    def artifact_location(self) -> str | None:
        if self.config.artifact_location or self.config.tracking_uri:
            return self.config.artifact_location
        return (self.run_dir / "mlartifacts").resolve().as_uri()

    @property
    def pending_dir(self) -> Path:
        return pending_root(self.run_dir)

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            from mlflow import MlflowClient

            if not self.config.tracking_uri:
                self.run_dir.mkdir(parents=True, exist_ok=True)
            self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        return self._client

    @property
    def experiment_id(self) -> str:
        """The configured experiment's id, created (with ``artifact_location``) on first use."""
        if self._experiment_id is None:
            self._experiment_id = self.experiment_id_for(self.config.experiment_name)
        return self._experiment_id

    def experiment_id_for(self, name: str) -> str:
        """The id of experiment ``name``, created with this tracker's ``artifact_location`` if missing."""
        from mlflow.exceptions import MlflowException

        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        try:
            return self.client.create_experiment(name, artifact_location=self.artifact_location)
        except MlflowException:  # created concurrently by another process
            exp = self.client.get_experiment_by_name(name)
            if exp is None:
                raise
            return exp.experiment_id

    @property
    def active_run_id(self) -> str | None:
        return self._stack[-1].run_id if self._stack else None

    def reachable(self) -> bool:
        """Whether the tracking server answers its health check (always true for local stores)."""
        return server_answers(self.tracking_uri, timeout_s=self.config.connect_timeout_s)

    def require_reachable(self) -> None:
        if not self.reachable():
            raise TrackingUnavailableError(f"MLflow tracking server {self.display_uri} does not answer")

    # -- runs ------------------------------------------------------------------------------------

    def start_run(
        self,
        run_name: str | None = None,
        *,
        nested: bool = False,
        parent_run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> str:
        """Start a run and make it the active one; ``nested=True`` puts it under the active run.

        Returns the MLflow run id (a local ``offline-…`` id while the server is unreachable).
        """
        with self._lock:
            if nested and parent_run_id is None:
                if not self._stack:
                    raise ValueError("nested=True needs an active run to nest under")
                parent_run_id = self._stack[-1].run_id
            if not self._stack:  # a new top-level run: ask the server again, even after an outage
                self.offline, self._warned, self._last_ok = False, False, float("-inf")
            run_tags = strings(tags or {})
            if parent_run_id:
                run_tags[PARENT_TAG] = parent_run_id

            def remote() -> _Run:
                run = self.client.create_run(self.experiment_id, run_name=run_name, tags=run_tags)
                return _Run(run.info.run_id, run_name, parent_run_id)

            def offline() -> _Run:
                journal = self._journal(run_name=run_name, parent_id=parent_run_id, tags=run_tags)
                return _Run(journal.local_id, run_name, parent_run_id, pending=journal)

            state = self._do(None, remote, offline)
            self._stack.append(state)
            return state.run_id

    @contextlib.contextmanager
    def run(self, run_name: str | None = None, **kwargs: Any) -> Iterator[str]:
        """``start_run`` … ``end_run`` as a block; the run ends FAILED if the block raises."""
        run_id = self.start_run(run_name, **kwargs)
        try:
            yield run_id
        except BaseException:
            self.end_run("FAILED")
            raise
        self.end_run()

    def end_run(self, status: str = "FINISHED") -> None:
        """Flush what is buffered and end the active run (``FINISHED``/``FAILED``/``KILLED``, or
        ``completed``/``stopped``/``errored``)."""
        status = run_status(status)
        with self._lock:
            state = self._active()
            end = int(time.time() * 1000)
            try:
                self._flush(state)
                self._do(
                    state,
                    lambda: self.client.set_terminated(state.run_id, status, end_time=end),
                    lambda: state.pending.finish(status, end),
                )
            finally:  # an unexpected MLflow error must not leave the run on the stack
                self._stack.pop()
            if state.pending is not None:
                log.warning(
                    "MLflow run %r was not fully logged to %s: %s kept in %s; upload with "
                    "`automl track sync %s`",
                    state.name or state.run_id,
                    self.display_uri,
                    state.pending.summary(),
                    state.pending.path,
                    self.run_dir,
                )

    # -- params, metrics, tags -------------------------------------------------------------------

    def log_params(self, params: Mapping[str, Any]) -> None:
        with self._lock:
            self._active().params.update({k: param_value(v, key=k) for k, v in params.items()})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        with self._lock:
            self._active().tags.update(strings(tags))

    def log_metrics(self, metrics: Mapping[str, float], *, step: int | None = None) -> None:
        """Buffer one value per metric (sent with the next ``log_batch``)."""
        now = int(time.time() * 1000)
        with self._lock:
            state = self._active()
            state.metrics.extend((k, float(v), now, int(step or 0)) for k, v in metrics.items())
            self._maybe_flush(state)

    def log_metric_history(
        self, key: str, values: Sequence[float], steps: Sequence[int] | None = None
    ) -> None:
        """Buffer a whole history (e.g. the validation metric after every round; steps 0, 1, … by default)."""
        steps = range(len(values)) if steps is None else steps
        if len(steps) != len(values):
            raise ValueError(f"{key}: {len(values)} values but {len(steps)} steps")
        now = int(time.time() * 1000)
        with self._lock:
            state = self._active()
            state.metrics.extend((key, float(v), now, int(s)) for v, s in zip(values, steps, strict=True))
            self._maybe_flush(state)

    def flush(self) -> None:
        """Send the active run's buffered params, tags and metrics now."""
        with self._lock:
            if self._stack:
                self._flush(self._stack[-1])

    # -- internals -------------------------------------------------------------------------------

    def log_batch_chunked(
        self,
        run_id: str,
        *,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> int:
        """``log_batch`` within MLflow's per-call limits; returns the number of calls made."""
        return log_batch_chunked(self.client, run_id, metrics=metrics, params=params, tags=tags)

    def _active(self) -> _Run:
        if not self._stack:
            raise RuntimeError("no active run: call start_run first")
        return self._stack[-1]

    def _maybe_flush(self, state: _Run) -> None:
        if (
            len(state.metrics) >= self.flush_every
            or time.monotonic() - state.last_flush >= self.flush_interval_s
        ):
            self._flush(state)

    def _flush(self, state: _Run) -> None:
        if not (state.params or state.tags or state.metrics):
            return
        params, tags, metrics = state.params, state.tags, state.metrics
        state.params, state.tags, state.metrics = {}, {}, []
        state.last_flush = time.monotonic()

        def remote() -> None:
            from mlflow.entities import Metric, Param, RunTag

            self.log_batch_chunked(
                state.run_id,
                metrics=[Metric(*m) for m in metrics],
                params=[Param(k, v) for k, v in params.items()],
                tags=[RunTag(k, v) for k, v in tags.items()],
            )

        self._do(state, remote, lambda: state.pending.add_batch(params=params, metrics=metrics, tags=tags))

    def _do(self, state: _Run | None, remote, offline):
        """``remote()`` while the server answers; on a connection failure, go offline and ``offline()``."""
        if not self.offline and not self._alive():
            self._go_offline(f"no answer to GET /health within {self.config.connect_timeout_s:g} s")
        if not self.offline:
            try:
                result = remote()
            except Exception as exc:
                if not is_unreachable(exc):
                    raise
                self._go_offline(f"{type(exc).__name__}: {str(exc)[:300]}")
            else:
                self._last_ok = time.monotonic()
                return result
        if state is not None and state.pending is None:
            state.pending = self._journal(
                run_name=state.name, parent_id=state.parent_id, remote_run_id=state.run_id
            )
        return offline()

    def _journal(self, **kwargs: Any) -> PendingRun:
        return PendingRun.create(self.run_dir, experiment_name=self.config.experiment_name, **kwargs)

    def _alive(self) -> bool:
        """A health probe when nothing succeeded for ``probe_interval_s``: a server that went away is
        noticed in a millisecond, instead of after MLflow's retries (7 with backoff, ~4 min by default)."""
        if time.monotonic() - self._last_ok < self.probe_interval_s:
            return True
        if self.reachable():
            self._last_ok = time.monotonic()
            return True
        return False

    def _go_offline(self, why: str) -> None:
        self.offline = True
        if self._warned:
            return
        self._warned = True
        message = (
            f"MLflow tracking server {self.display_uri} is unreachable ({redact_text(why)}). Training goes "
            f"on; params, metrics, artifacts and models of this run are NOT in MLflow but kept in "
            f"{self.pending_dir}. Upload them later with `automl track sync {self.run_dir}`."
        )
        log.warning(message)
        warnings.warn(message, TrackingOfflineWarning, stacklevel=3)
