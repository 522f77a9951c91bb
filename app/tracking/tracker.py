"""MLflow tracking of AutoML runs: a parent run per AutoML run, a nested child per trial, metrics sent in
``log_batch`` calls, models logged with their flavour and as a pyfunc pipeline, and an offline journal
under ``RUN_DIR/mlruns-pending/`` whenever the tracking server cannot be reached.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import threading
import time
import urllib.request
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.config import TrackingConfig
from app.tracking.pending import PendingRun, pending_root
from app.tracking.tags import FAMILY_TAG, KIND_TAG, PARENT_TAG, TRIAL_STATUS_TAG

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
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, Run, RunTag

    from app.config import AppConfig
    from app.tracking.flavors import ModelLogResult

log = logging.getLogger(__name__)

MLflowConfig = TrackingConfig  # the deployment guide's name for the same settings

# MLflow's log_batch limits: 1000 entities per call, of which at most 100 params and 100 tags.
MAX_BATCH, MAX_PARAMS, MAX_TAGS = 1000, 100, 100
MAX_PARAM_CHARS = 6000
_RUN_STATUS = {
    "finished": "FINISHED",
    "completed": "FINISHED",
    "stopped": "FINISHED",  # stopped by ASHA: a normal end for a trial, as Tune's MLflow callback has it
    "failed": "FAILED",
    "errored": "FAILED",
    "error": "FAILED",
    "killed": "KILLED",
}
_UNREACHABLE_HINTS = (
    "Max retries exceeded",
    "Failed to establish a new connection",
    "Connection refused",
    "Connection aborted",
    "RemoteDisconnected",
    "timed out",
    "timeout exception",
    "Could not connect to the endpoint URL",
)


class TrackingOfflineWarning(UserWarning):
    """The tracking server could not be reached; the run is being kept in ``RUN_DIR/mlruns-pending/``."""


class TrackingUnavailableError(RuntimeError):
    """An operation that needs the tracking server (sync, registry) could not reach it."""


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


class MLflowTracker:
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
        uri = self.tracking_uri
        if not uri.startswith(("http://", "https://")):
            return True
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=self.config.connect_timeout_s):
                return True
        except Exception:  # noqa: BLE001 - refused, timed out, DNS, HTTP error: all mean "not usable"
            return False

    def require_reachable(self) -> None:
        if not self.reachable():
            raise TrackingUnavailableError(f"MLflow tracking server {self.tracking_uri} does not answer")

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
            run_tags = _strings(tags or {})
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
        status = _run_status(status)
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
                    self.tracking_uri,
                    state.pending.summary(),
                    state.pending.path,
                    self.run_dir,
                )

    # -- params, metrics, tags -------------------------------------------------------------------

    def log_params(self, params: Mapping[str, Any]) -> None:
        with self._lock:
            self._active().params.update({k: _param(v) for k, v in params.items()})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        with self._lock:
            self._active().tags.update(_strings(tags))

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

    # -- artifacts and models --------------------------------------------------------------------

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> None:
        """A file, or a directory's contents under ``artifact_path/<dir name>``."""
        with self._lock:
            state = self._active()
            path = Path(local_path)

            def remote() -> None:
                if path.is_dir():
                    sub = "/".join(p for p in (artifact_path, path.name) if p)
                    self.client.log_artifacts(state.run_id, str(path), sub)
                else:
                    self.client.log_artifact(state.run_id, str(path), artifact_path)

            self._do(state, remote, lambda: state.pending.add_artifact(path, artifact_path))

    def log_dict(self, data: Any, artifact_file: str) -> None:
        import json

        self._log_text(json.dumps(data, indent=2, default=str), artifact_file)

    def log_table(self, frame: pd.DataFrame, artifact_file: str) -> None:
        """A DataFrame as CSV (``.csv``) or JSON records (anything else), e.g. the leaderboard."""
        if artifact_file.endswith(".csv"):
            self._log_text(frame.to_csv(index=False), artifact_file)
        else:
            self._log_text(frame.to_json(orient="records", indent=1), artifact_file)

    def log_run_artifacts(
        self,
        *,
        leaderboard: pd.DataFrame | None = None,
        profile: Any = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """The AutoML run's tables: ``leaderboard.csv``, the data statistics profile as
        ``data_profile.json`` (a ``DatasetProfile``, a dict, or a JSON file) and ``extra`` dicts as JSON."""
        if leaderboard is not None:
            self.log_table(leaderboard, "leaderboard.csv")
        if profile is not None:
            if isinstance(profile, str | Path):
                self.log_artifact(profile)
            else:
                data = profile.to_dict() if hasattr(profile, "to_dict") else profile
                self.log_dict(data, "data_profile.json")
        for name, data in (extra or {}).items():
            self.log_dict(data, name if name.endswith(".json") else f"{name}.json")

    def log_model(
        self,
        model: Any,
        *,
        name: str = "model",
        registered_model_name: str | None = None,
        input_example: pd.DataFrame | None = None,
        weights: Sequence[float] | None = None,
    ) -> ModelLogResult | None:
        """Log a model directory, ``TrainResult`` or ``Predictor``, or an ensemble (an ``ensemble.json``
        directory, an ``EnsemblePredictor``, or a list of single models with ``weights``).

        Logs the preprocessor + model pipeline as a pyfunc named ``name``, each booster with its
        library's flavour (``name-<family>``), its feature importance, and registers the pipeline under
        ``registered_model_name`` (default: the config's) as a new version. Returns None while offline.
        """
        from app.tracking.flavors import expand_models

        registered_model_name = registered_model_name or self.config.registered_model_name
        with self._lock, tempfile.TemporaryDirectory(prefix="automl-log-model-") as scratch:
            state = self._active()
            members, found_weights = expand_models(model, Path(scratch))
            weights = weights or found_weights
            self._flush(state)
            return self._do(
                state,
                lambda: self.log_model_to_run(
                    state.run_id,
                    members,
                    weights=weights,
                    name=name,
                    registered_model_name=registered_model_name,
                    input_example=input_example,
                ),
                lambda: state.pending.add_model(
                    members,
                    weights=list(weights) if weights else None,
                    name=name,
                    registered_model_name=registered_model_name,
                    input_example=input_example,
                ),
            )

    def log_model_to_run(
        self,
        run_id: str,
        members: Sequence[Path],
        *,
        weights: Sequence[float] | None = None,
        name: str = "model",
        registered_model_name: str | None = None,
        input_example: pd.DataFrame | None = None,
    ) -> ModelLogResult:
        """``log_model`` for an existing run id (no buffering, no offline fallback)."""
        from app.tracking.flavors import log_models

        if self._stack and self._stack[-1].run_id == run_id:
            experiment_id = self.experiment_id
        else:  # e.g. a run uploaded by sync_pending, possibly in another experiment
            experiment_id = self.client.get_run(run_id).info.experiment_id
        return log_models(
            self.client,
            experiment_id=experiment_id,
            run_id=run_id,
            members=members,
            weights=weights,
            name=name,
            registered_model_name=registered_model_name,
            input_example=input_example,
        )

    # -- trials ----------------------------------------------------------------------------------

    def log_trial(
        self,
        parent_run_id: str,
        family: str,
        params: Mapping[str, Any],
        metric_history: Mapping[str, Sequence[float]] | Sequence[float],
        rounds: int,
        status: str,
        *,
        metric: str = "valid_metric",
        run_name: str | None = None,
        error: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> str:
        """One finished Tune trial as a child run of ``parent_run_id``: params, per-round metric
        histories, ``rounds``, family and status (``completed``, ``stopped`` by ASHA, ``errored``).

        Three HTTP calls (create, one ``log_batch`` per 1,000 values, terminate). Returns the run id.
        """
        histories = metric_history if isinstance(metric_history, Mapping) else {metric: metric_history}
        run_tags = {
            **_strings(tags or {}),
            PARENT_TAG: parent_run_id,
            FAMILY_TAG: family,
            TRIAL_STATUS_TAG: status,
            KIND_TAG: "trial",
        }
        if error:
            run_tags["automl.error"] = error[:MAX_PARAM_CHARS]
        now = int(time.time() * 1000)
        metrics = [(k, float(v), now, i) for k, values in histories.items() for i, v in enumerate(values)]
        metrics.append(("rounds", float(rounds), now, 0))
        str_params = {k: _param(v) for k, v in params.items()}
        mlflow_status = _run_status(status)

        def remote() -> str:
            from mlflow.entities import Metric, Param

            run_id = self.client.create_run(self.experiment_id, run_name=run_name, tags=run_tags).info.run_id
            self.log_batch_chunked(
                run_id,
                metrics=[Metric(*m) for m in metrics],
                params=[Param(k, v) for k, v in str_params.items()],
            )
            self.client.set_terminated(run_id, mlflow_status, end_time=int(time.time() * 1000))
            return run_id

        def offline() -> str:
            journal = self._journal(run_name=run_name, parent_id=parent_run_id, tags=run_tags)
            journal.add_batch(params=str_params, metrics=metrics, tags={})
            journal.finish(mlflow_status)
            return journal.local_id

        with self._lock:
            return self._do(None, remote, offline)

    # -- queries ---------------------------------------------------------------------------------

    def get_best_run(
        self,
        metric: str,
        mode: str | None = None,
        *,
        parent_run_id: str | None = None,
        filter_string: str = "",
    ) -> Run | None:
        """The experiment's run with the best ``metric`` (``mode`` max/min; by default the metric's own
        direction, ``app.train.metrics.get_metric``), optionally among the children of ``parent_run_id``;
        None if none has it."""
        from app.train.metrics import get_metric

        mode = mode or get_metric(metric).mode
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if self.offline:
            log.warning("get_best_run: tracking server unreachable; no run to compare")
            return None
        self.flush()
        filters = [f for f in (filter_string,) if f]
        if parent_run_id:
            filters.append(f"tags.`{PARENT_TAG}` = '{parent_run_id}'")
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=" and ".join(filters),
            order_by=[f"metrics.`{metric}` {'DESC' if mode == 'max' else 'ASC'}"],
            max_results=100,
        )
        return next((r for r in runs if metric in r.data.metrics), None)

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
        metrics, params, tags = list(metrics), list(params), list(tags)
        calls = 0
        while metrics or params or tags or calls == 0:
            p, params = params[:MAX_PARAMS], params[MAX_PARAMS:]
            t, tags = tags[:MAX_TAGS], tags[MAX_TAGS:]
            room = MAX_BATCH - len(p) - len(t)
            m, metrics = metrics[:room], metrics[room:]
            if m or p or t:
                self.client.log_batch(run_id, metrics=m, params=p, tags=t)
            calls += 1
        return calls

    def _log_text(self, text: str, artifact_file: str) -> None:
        with tempfile.TemporaryDirectory(prefix="automl-artifact-") as tmp:
            path = Path(tmp) / Path(artifact_file).name
            path.write_text(text)
            parent = str(Path(artifact_file).parent)
            self.log_artifact(path, None if parent == "." else parent)

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
                if not _is_unreachable(exc):
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
            f"MLflow tracking server {self.tracking_uri} is unreachable ({why}). Training goes on; "
            f"params, metrics, artifacts and models of this run are NOT in MLflow but kept in "
            f"{self.pending_dir}. Upload them later with `automl track sync {self.run_dir}`."
        )
        log.warning(message)
        warnings.warn(message, TrackingOfflineWarning, stacklevel=3)


def _is_unreachable(exc: BaseException) -> bool:
    import requests

    while exc is not None:
        if isinstance(
            exc,
            ConnectionError
            | TimeoutError
            | requests.exceptions.ConnectionError
            | requests.exceptions.Timeout,
        ):
            return True
        if any(hint in str(exc) for hint in _UNREACHABLE_HINTS):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _run_status(status: str) -> str:
    key = status.lower()
    if key not in _RUN_STATUS:
        raise ValueError(f"unknown run status {status!r}; use one of {', '.join(sorted(_RUN_STATUS))}")
    return _RUN_STATUS[key]


def _param(value: Any) -> str:
    return str(value)[:MAX_PARAM_CHARS]


def _strings(mapping: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in mapping.items()}
