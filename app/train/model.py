"""Saved models: the native model file, the preprocessor and metadata in one directory, and the
``Predictor`` that ``load_model`` returns. Nothing is pickled.

Layout: ``model.ubj`` (XGBoost) | ``model.txt`` (LightGBM) | ``model.cbm`` (CatBoost),
``preprocessor.json``, ``metadata.json``.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from app import atomic
from app.data.encode import Preprocessor
from app.learners import learner
from app.train.integrity import CHECKSUMS_KEY, ModelFileError, checksums, read_json, verify

if TYPE_CHECKING:
    from app.train.result import TrainResult

METADATA_FILE = "metadata.json"
PREPROCESSOR_FILE = "preprocessor.json"
FORMAT_VERSION = 1


def _versions(packages: tuple[str, ...]) -> dict[str, str]:
    """Versions of Python, the learner's ``packages`` and the libraries every model reads through."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in (*packages, "ray", "numpy", "pyarrow", "pandas"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            continue
    return out


def save_model(result: TrainResult, out_dir: str | Path) -> Path:
    """Write the model in its native format with ``preprocessor.json`` and ``metadata.json``."""
    return write_model_dir(out_dir, result.family, result.model, result.preprocessor, result.metadata())


def write_model_dir(
    out_dir: str | Path, family: str, model: Any, preprocessor: Preprocessor, metadata: dict[str, Any]
) -> Path:
    """The one writer of a model directory: the native model file, ``preprocessor.json``, then
    ``metadata.json`` (``metadata`` plus the format, the libraries' versions and the two files' checksums),
    written last and atomically, so a directory with metadata is complete."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    mod = learner(family)
    model_path = mod.save(model, out_dir)
    preprocessor.save(out_dir / PREPROCESSOR_FILE)
    meta = {
        "created_unix": time.time(),
        "versions": _versions(mod.PACKAGES),
        "family": family,
        **metadata,
        "format_version": FORMAT_VERSION,
        "model_file": model_path.name,
        CHECKSUMS_KEY: checksums(out_dir, [model_path.name, PREPROCESSOR_FILE]),
    }
    atomic.write_json(out_dir / METADATA_FILE, meta)
    return out_dir


def update_metadata(model_dir: str | Path, changes: dict[str, Any]) -> dict[str, Any]:
    """``metadata.json`` of a model directory with ``changes`` merged in (the checksums cover the model
    and preprocessor files, which stay as they are)."""
    path = Path(model_dir) / METADATA_FILE
    meta = {**json.loads(path.read_text()), **changes}
    atomic.write_json(path, meta)
    return meta


def load_single(path: str | Path) -> Predictor:
    """The ``Predictor`` of one directory written by ``save_model`` (``app.train.load_model`` loads
    any saved model: this, an ensemble or a registered one)."""
    path = Path(path)
    meta_path = path / METADATA_FILE
    if not meta_path.exists():
        if path.is_dir() and (path / "members").is_dir():
            raise ModelFileError(f"{path / 'ensemble.json'}: missing (the directory holds ensemble members)")
        raise ModelFileError(f"{meta_path}: missing; not a model directory written by save_model")
    meta = read_json(meta_path, METADATA_FILE)
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{meta_path}: model format {meta.get('format_version')} is not {FORMAT_VERSION}"
        )
    try:
        mod = learner(meta["family"])
        model_file = path / meta["model_file"]
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelFileError(f"{meta_path}: not model metadata ({exc!r})") from None
    # Before any library reads a byte: a truncated LightGBM file aborts the process inside the library.
    verify(path, meta)
    if not model_file.is_file():
        raise ModelFileError(f"{model_file}: model file missing")
    try:
        model = mod.load(model_file)
        pre = Preprocessor.load(path / PREPROCESSOR_FILE)
    except Exception as exc:  # noqa: BLE001 - a library's parse error, whatever its type, names the file
        raise ModelFileError(f"{path}: cannot load the model ({type(exc).__name__}: {exc})") from None
    return Predictor(family=meta["family"], model=model, preprocessor=pre, metadata=meta)


class ScoringModel:
    """What every loaded model answers: labels and probabilities from ``predict_scores``.

    Subclasses set ``preprocessor`` and implement ``predict_scores``: class probabilities
    ``(n, classes)`` for classification, values ``(n,)`` for regression.
    """

    preprocessor: Preprocessor
    metadata: dict

    @property
    def task(self) -> str:
        return str(self.preprocessor.task)

    @property
    def features(self) -> list[str]:
        return list(self.preprocessor.features)

    @property
    def classes(self) -> list[Any] | None:
        return self.preprocessor.classes

    def predict_scores(self, data: Any) -> np.ndarray:
        raise NotImplementedError

    def use_device(self, device: str) -> None:
        """Predict on ``cuda`` or ``cpu`` where the family supports it."""

    def model_input(self, data: Any) -> pa.Table | np.ndarray:
        """``data`` as ``transform`` takes it: a float matrix as it is when every feature is a plain
        number (a few rows' Arrow conversion costs more than their prediction), else an Arrow table."""
        if isinstance(data, np.ndarray) and data.dtype.kind == "f" and self.preprocessor.takes_matrix:
            return data
        return self.as_table(data)

    def as_table(self, data: Any) -> pa.Table:
        """The raw feature columns of ``data`` as an Arrow table."""
        if isinstance(data, pa.Table):
            return data
        if isinstance(data, pa.RecordBatch):
            return pa.Table.from_batches([data])
        if isinstance(data, pd.DataFrame):
            return pa.Table.from_pandas(data, preserve_index=False)
        if isinstance(data, dict):
            return pa.table({k: pa.array(np.asarray(v), from_pandas=True) for k, v in data.items()})
        if isinstance(data, np.ndarray):
            if data.ndim != 2 or data.shape[1] != len(self.features):
                raise ValueError(
                    f"a numpy input must be 2-D with {len(self.features)} columns ({self.features}); "
                    f"got shape {data.shape}"
                )
            cols = {name: pa.array(data[:, j], from_pandas=True) for j, name in enumerate(self.features)}
            return pa.table(cols)
        raise TypeError(f"cannot predict on {type(data).__name__}: pass pandas, Arrow, numpy or a dict")

    def predict_proba(self, data: Any) -> np.ndarray:
        """Class probabilities ``(n, classes)``, columns in ``classes`` order; rows sum to 1."""
        if self.task == "regression":
            raise ValueError("predict_proba is for classifiers; this model is a regressor")
        return self.predict_scores(data)

    def predict(self, data: Any) -> np.ndarray:
        """Predicted labels (classification, original values) or numbers (regression)."""
        scores = self.predict_scores(data)
        if self.task == "regression":
            return scores
        return self.preprocessor.decode_labels(np.argmax(scores, axis=1))


class Predictor(ScoringModel):
    """Predictions from raw feature columns: pandas, Arrow, a 2-D numpy array or a dict of columns.

    A numpy array holds the raw feature columns in ``features`` order (an object array when some
    are strings). Class predictions come back as the original labels.
    """

    def __init__(self, *, family: str, model: Any, preprocessor: Preprocessor, metadata: dict) -> None:
        self.family, self.model, self.preprocessor, self.metadata = family, model, preprocessor, metadata
        self._mod = learner(family)

    def use_device(self, device: str) -> None:
        """Predict on ``cuda`` or ``cpu`` where the family supports it (XGBoost)."""
        if hasattr(self._mod, "set_device"):
            self._mod.set_device(self.model, device)

    def predict_scores(self, data: Any) -> np.ndarray:
        """Class probabilities ``(n, classes)`` for classification, values ``(n,)`` for regression."""
        columns = self.preprocessor.transform(self.model_input(data), with_target=False)
        return np.asarray(self._mod.predict(self.model, columns, self.preprocessor))
