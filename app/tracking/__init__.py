"""The tracking stage: MLflow runs for AutoML runs and trials, models in the registry, the run report.

Exports (loaded on first use, so ``import app.tracking`` imports neither mlflow nor matplotlib):
``MLflowTracker``, ``MLflowConfig``, ``TrackingOfflineWarning``, ``sync_pending``, ``ModelRegistry``,
``build_report``.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "MLflowTracker": "app.tracking.tracker",
    "MLflowConfig": "app.tracking.tracker",
    "ModelLogResult": "app.tracking.flavors",
    "TrackingOfflineWarning": "app.tracking.tracker",
    "TrackingUnavailableError": "app.tracking.tracker",
    "sync_pending": "app.tracking.pending",
    "list_pending": "app.tracking.pending",
    "ModelRegistry": "app.tracking.registry",
    "PromotionDecision": "app.tracking.registry",
    "holdout_metric": "app.tracking.registry",
    "load_pyfunc": "app.tracking.registry",
    "build_report": "app.tracking.report",
    "regenerate_report": "app.tracking.report",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'app.tracking' has no attribute {name!r}")
