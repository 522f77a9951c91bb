"""MLflow's ``log_batch`` limits and how values are written: chunked batches, params cut to size, run
statuses by name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from app.redact import redact

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

# MLflow's log_batch limits: 1000 entities per call, of which at most 100 params and 100 tags.
MAX_BATCH, MAX_PARAMS, MAX_TAGS = 1000, 100, 100
MAX_PARAM_CHARS = 6000
_RUN_STATUS = {
    "finished": "FINISHED",
    "completed": "FINISHED",
    "deadline": "FINISHED",  # ended by the time budget with its model so far
    "stopped": "FINISHED",  # stopped by ASHA: a normal end for a trial, as Tune's MLflow callback has it
    "failed": "FAILED",
    "errored": "FAILED",
    "error": "FAILED",
    "killed": "KILLED",
    "cut": "KILLED",  # ended by the time budget or Ctrl-C between reports (its persisted model is kept)
}


def log_batch_chunked(
    client: MlflowClient,
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
            client.log_batch(run_id, metrics=m, params=p, tags=t)
        calls += 1
    return calls


def run_status(status: str) -> str:
    """MLflow's status for ``status`` (``completed``/``stopped``/``errored`` or MLflow's own names)."""
    key = status.lower()
    if key not in _RUN_STATUS:
        raise ValueError(f"unknown run status {status!r}; use one of {', '.join(sorted(_RUN_STATUS))}")
    return _RUN_STATUS[key]


def param_value(value: Any, *, key: str | None = None) -> str:
    """A param as MLflow stores it: secrets masked (a secret-named ``key``, URL passwords), cut to size."""
    return str(redact(value, key=key))[:MAX_PARAM_CHARS]


def strings(mapping: Mapping[str, Any]) -> dict[str, str]:
    """Tags as strings, secrets masked."""
    return {str(k): str(redact(v, key=str(k))) for k, v in mapping.items()}
