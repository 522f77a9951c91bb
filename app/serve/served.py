"""The model a replica serves: the predictor from ``app.train.load_model`` with the name, version and
input schema the API reports, and a cheap check of whether a registry alias has moved."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.serve.rows import Rows
from app.serve.schema import FeatureSchema
from app.train.ensemble import ENSEMBLE_FILE
from app.train.model import METADATA_FILE


@dataclass(frozen=True)
class ServedModel:
    """A loaded model and what identifies it: cache keys and metrics carry ``version``."""

    predictor: Any
    name: str
    version: str
    source: str
    schema: FeatureSchema

    @property
    def task(self) -> str:
        return self.predictor.task

    @property
    def classes(self) -> list[Any] | None:
        return self.predictor.classes

    def predict_rows(self, rows: Rows) -> list[dict[str, Any]]:
        """One JSON-ready answer per row: ``{"prediction": ...}`` plus ``proba_<class>`` for classifiers."""
        scores = np.asarray(self.predictor.predict_scores(rows.model_input()), dtype=np.float64)
        if self.task == "regression":
            return [{"prediction": v} for v in scores.tolist()]
        labels = self.predictor.preprocessor.decode_labels(scores.argmax(axis=1)).tolist()
        keys = ("prediction", *(f"proba_{c}" for c in self.classes))
        # Column by column: one list per class, zipped into each row's answer (a dict per row from
        # zip(keys, ...) is the cheapest way Python builds many small dicts).
        columns = zip(labels, *scores.T.tolist(), strict=True)
        return [dict(zip(keys, values, strict=True)) for values in columns]

    def describe(self) -> dict[str, Any]:
        meta = self.predictor.metadata
        return {
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "family": getattr(self.predictor, "family", None),
            "task": self.task,
            "features": self.schema.describe(),
            "classes": self.classes,
            "metrics": _training_metrics(meta),
        }


def load_served(
    source: str, *, tracking_uri: str | None = None, loader: Callable | None = None, label: str | None = None
) -> ServedModel:
    """Load ``source`` (model directory, ensemble directory or ``models:/`` URI) for serving; ``label``
    replaces the version it reports."""
    if loader is None:
        from app.train.load import load_model as loader
    predictor = loader(source, tracking_uri=tracking_uri)
    meta = predictor.metadata
    if meta.get("registered_name"):
        name, version = str(meta["registered_name"]), str(meta["registered_version"])
    else:
        path = Path(source).resolve()
        # runs/a1/model is known as "a1": `automl fit` names the run folder, not the model folder
        name = path.parent.name if path.name == "model" else path.name
        version = local_version(path)
    return ServedModel(
        predictor, name, label or version, source, FeatureSchema.from_preprocessor(predictor.preprocessor)
    )


def local_version(path: Path) -> str:
    """A model directory's version: a digest of its metadata, so a new model in the same place is a new
    version (and gets new cache keys)."""
    digest = hashlib.sha256()
    for file in sorted([*path.rglob(METADATA_FILE), *path.glob(ENSEMBLE_FILE)]):
        digest.update(file.read_bytes())
    return "sha-" + digest.hexdigest()[:12]


def alias_version(source: str, *, tracking_uri: str | None = None) -> str | None:
    """The version a ``models:/NAME@alias`` URI points at now (None for any other source)."""
    ref = source.removeprefix("models:/")
    if not source.startswith("models:/") or "@" not in ref:
        return None
    from mlflow import MlflowClient

    from app.train.load import resolve_model_uri

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    return resolve_model_uri(client, source).version


def _training_metrics(meta: dict) -> dict[str, Any]:
    out = {}
    for key in (
        "metric",
        "metric_name",
        "best_score",
        "score",
        "valid_score",
        "ensemble_score",
        "best_iteration",
    ):
        if key in meta and isinstance(meta[key], str | int | float):
            out[key] = meta[key]
    for key in ("metrics", "validation"):
        if isinstance(meta.get(key), dict):
            out.update({k: v for k, v in meta[key].items() if isinstance(v, str | int | float)})
    return out
