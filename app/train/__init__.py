"""The training stage: data-parallel GBDT training on Ray Train, native model files, batch scoring.

Exports (loaded on first use, so ``import app.train`` stays cheap): ``train``, ``run_training``,
``TrainResult``, ``save_model``, ``load_model`` (any saved model: a directory, an ensemble, a
``models:/`` URI), ``Predictor``, ``EnsemblePredictor``, ``save_ensemble``, ``score_dataset``.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "train": "app.train.api",
    "run_training": "app.train.api",
    "TrainResult": "app.train.result",
    "GPUUnavailableError": "app.train.resources",
    "save_model": "app.train.model",
    "load_model": "app.train.load",
    "EnsemblePredictor": "app.train.ensemble",
    "save_ensemble": "app.train.ensemble",
    "Predictor": "app.train.model",
    "score_dataset": "app.train.score",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'app.train' has no attribute {name!r}")
