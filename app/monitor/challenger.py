"""What a retraining job does (``jobs/retrain.py``): fit a challenger on fresh labelled data, score it and
the champion on the same held-out rows of that data, promote it through the registry's rule, and record
why it ran — so drift → retrain → compare → promote closes without a person, and every step is in MLflow."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from app.config import AppConfig
from app.data.pipeline import holdout_rows
from app.search.api import run_fit
from app.search.inputs import dataset_spec
from app.tracking.registry import ModelRegistry, holdout_metric

DEFAULT_TEST_FRACTION = 0.2
REASON_TAG = "automl.retrain.reason"


@dataclass(frozen=True)
class RetrainOutcome:
    model_name: str
    version: str
    promoted: bool
    decision: str  # the registry's reason, with both holdout values
    metric: str
    challenger_value: float | None
    champion_value: float | None
    champion_version: str | None
    holdout_rows: int
    run_id: str
    model_dir: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def retrain(
    data: str,
    *,
    target: str,
    model_name: str,
    config: AppConfig,
    out_dir: str | Path,
    reason: str,
    margin: float = 0.0,
    holdout: str | None = None,
    **overrides: Any,
) -> RetrainOutcome:
    """Fit a challenger on ``data`` (search ``overrides`` such as ``time_budget_s`` on top of
    ``config.search``), register it under ``model_name`` and promote it if it beats the champion by
    ``margin`` on held-out rows: those of ``holdout`` (a path), else ``data``'s test split, which the fit
    never trains on (``data.test_fraction``, 0.2 when the config has none).

    Example:
        >>> retrain("s3://b/fresh/", target="y", model_name="churn", config=cfg, out_dir="runs/r1",
        ...         reason="amount drifted (PSI 0.41)", time_budget_s=600)  # doctest: +SKIP
    """
    cfg = config.model_copy(deep=True)
    if not cfg.tracking.tracking_uri:
        raise ValueError(
            "retraining registers and promotes through a model registry: set tracking.tracking_uri or "
            "MLFLOW_TRACKING_URI to the MLflow server the service follows"
        )
    cfg.tracking.registered_model_name = model_name
    if holdout is None and not cfg.data.test_fraction:
        cfg.data.test_fraction = DEFAULT_TEST_FRACTION
    result = run_fit(data, target=target, config=cfg, out_dir=out_dir, **overrides)
    record = result.tracking
    version = record.get("registered")
    if not version:
        raise RuntimeError(
            f"the challenger in {result.model_dir} was not registered as {model_name!r}: "
            f"{record.get('error') or 'tracking did not register it'}"
        )
    uri = record.get("tracking_uri") or cfg.tracking.tracking_uri
    registry = ModelRegistry(tracking_uri=uri)
    registry.client.set_model_version_tag(model_name, version, REASON_TAG, reason)
    if record.get("run_id"):
        registry.client.set_tag(record["run_id"], REASON_TAG, reason)
    frame = _holdout_frame(holdout or data, target=target, config=cfg, out_dir=Path(out_dir), given=holdout)
    decision = registry.promote(
        model_name,
        version=version,
        metric=result.metric,
        holdout_metric_fn=holdout_metric(frame, target=target, metric=result.metric, tracking_uri=uri),
        margin=margin,
        by="automl-retrain",
    )
    return RetrainOutcome(
        model_name=model_name,
        version=str(version),
        promoted=decision.promoted,
        decision=decision.reason,
        metric=result.metric,
        challenger_value=decision.candidate_value,
        champion_value=decision.champion_value,
        champion_version=decision.champion_version,
        holdout_rows=len(frame),
        run_id=record.get("run_id", ""),
        model_dir=str(result.model_dir),
    )


def _holdout_frame(source: str, *, target: str, config: AppConfig, out_dir: Path, given: str | None):
    spec = dataset_spec(source, None, target, out_dir=out_dir, s3=config.data.s3)
    if given is not None:  # a holdout file of its own: all of its rows
        from app.data.io import inspect, load

        return load(inspect(spec)).to_pandas()
    return holdout_rows(spec, config=config.data)
