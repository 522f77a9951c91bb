"""The tracker's trial runs and queries: one child run per Tune trial, logged in a few calls, and the
experiment's best run by a metric's own direction.

A mixin of ``MLflowTracker``: it relies on the tracker's client, experiment and offline fallback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from app.tracking.batch import MAX_PARAM_CHARS, param_value, run_status, strings
from app.tracking.tags import FAMILY_TAG, KIND_TAG, PARENT_TAG, TRIAL_STATUS_TAG

if TYPE_CHECKING:
    from mlflow.entities import Run

log = logging.getLogger(__name__)


class TrialLogging:
    """``log_trial`` and ``get_best_run``."""

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
            **strings(tags or {}),
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
        str_params = {k: param_value(v, key=k) for k, v in params.items()}
        mlflow_status = run_status(status)

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
