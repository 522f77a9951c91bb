"""The prediction reference a served model's prediction drift is measured against: one number per
prediction (``summarize``) of the chosen model on validation rows, written beside the model at fit time
as ``prediction_reference.json`` and logged with the MLflow run, so a model served from a run folder or
from the registry carries its reference with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from app import atomic

REFERENCE_FILE = "prediction_reference.json"
MAX_VALUES = 2000  # a sample this size pins PSI's deciles well; the file stays a few tens of kB


def summarize(scores: Any) -> np.ndarray:
    """One number per prediction: the positive class's probability (binary), the top class's probability
    (multiclass), the value (regression)."""
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim == 1:
        return arr
    return arr[:, 1] if arr.shape[1] == 2 else arr.max(axis=1)


def reference(model: Any, rows: Any, *, seed: int = 0) -> dict[str, Any]:
    """The reference of ``model`` on ``rows`` (a table or frame of raw validation rows)."""
    values = summarize(model.predict_scores(rows))
    if len(values) > MAX_VALUES:
        values = np.random.default_rng(seed).choice(values, MAX_VALUES, replace=False)
    return {
        "summary": "binary: positive-class probability; multiclass: top-class probability; regression: value",
        "rows": int(len(values)),
        "values": [round(float(v), 6) for v in np.sort(values)],
    }


def save_reference(data: dict[str, Any], out_dir: str | Path) -> Path:
    return atomic.write_json(Path(out_dir) / REFERENCE_FILE, data, indent=None)


def load_reference(path: str | Path) -> list[float]:
    """The values of a ``prediction_reference.json``; a file that is not one is named in the error."""
    try:
        data = json.loads(Path(path).read_text())
        values = [float(v) for v in data["values"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a prediction reference ({exc})") from exc
    return values
