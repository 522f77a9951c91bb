"""``load_model``: the one way to turn a saved model into a predictor — a model directory from
``save_model``, an ensemble directory (``ensemble.json``), or a registered MLflow model
(``models:/NAME@alias``, ``models:/NAME/3``, ``models:/<model id>``). Native files only, never a pickle.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.train.ensemble import EnsemblePredictor, is_ensemble_dir, read_ensemble
from app.train.model import ScoringModel, load_single

if TYPE_CHECKING:
    from mlflow import MlflowClient

MLMODEL_FILE = "MLmodel"


@dataclass(frozen=True)
class RegistryRef:
    """A ``models:/`` URI resolved against a registry: where its files are and which version it is."""

    uri: str
    download_uri: str
    name: str | None = None
    version: str | None = None
    alias: str | None = None


def resolve_model_uri(client: MlflowClient, model_uri: str) -> RegistryRef:
    """Resolve ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or ``models:/<model id>`` with ``client``.

    MLflow itself resolves ``models:/NAME@ALIAS`` against the process-wide registry even when handed
    another tracking URI, so the name, alias and version are looked up here through ``client``.
    """
    if not model_uri.startswith("models:/"):
        raise ValueError(f"{model_uri!r} is not a models:/ URI")
    ref = model_uri.removeprefix("models:/").strip("/")
    if "@" in ref:
        name, alias = ref.split("@", 1)
        version = _version_by_alias(client, name, alias, model_uri)
        return RegistryRef(
            model_uri, client.get_model_version_download_uri(name, version), name, version, alias
        )
    if "/" in ref:
        name, version = ref.rsplit("/", 1)
        return RegistryRef(model_uri, client.get_model_version_download_uri(name, version), name, version)
    return RegistryRef(model_uri, client.get_logged_model(ref).artifact_location)


def _version_by_alias(client: MlflowClient, name: str, alias: str, uri: str) -> str:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        raise LookupError(f"{uri}: model {name!r} has no version with alias {alias!r}") from exc


def load_model(source: str | os.PathLike, *, tracking_uri: str | None = None) -> ScoringModel:
    """A predictor for ``source``: a model directory, an ensemble directory or a ``models:/`` URI.

    Args:
        source: a local directory written by ``save_model`` / ``save_ensemble``, or a ``models:/`` URI of
            the pipeline model that tracking logs (its member directories hold the native files).
        tracking_uri: the MLflow server or store that resolves a ``models:/`` URI (default: MLflow's own
            resolution, ``MLFLOW_TRACKING_URI``).

    The predictor's ``metadata`` gains ``source`` and, for a registered model, ``registered_name`` and
    ``registered_version``.

    Example:
        >>> model = load_model("runs/a1/model")  # doctest: +SKIP
        >>> model = load_model("models:/churn@champion", tracking_uri="http://mlflow:5000")  # doctest: +SKIP
        >>> model.predict_proba(frame)[:2]  # doctest: +SKIP
    """
    if str(source).startswith("models:/"):
        return _load_registered(str(source), tracking_uri=tracking_uri)
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such model directory")
    if is_ensemble_dir(path):
        members, weights, spec = read_ensemble(path)
        model: ScoringModel = EnsemblePredictor([load_single(m) for m in members], weights, spec)
    else:
        model = load_single(path)
    model.metadata = {**model.metadata, "source": str(path)}
    return model


def _load_registered(uri: str, *, tracking_uri: str | None) -> ScoringModel:
    import mlflow.artifacts
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    ref = resolve_model_uri(client, uri)
    # The model is read into memory whole; its downloaded files are not needed after that.
    with tempfile.TemporaryDirectory(prefix="automl-model-") as tmp:
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=ref.download_uri, dst_path=tmp, tracking_uri=client.tracking_uri
            )
        )
        model = _load_pipeline_dir(local, uri)
    model.metadata = {
        **model.metadata,
        "source": uri,
        "registered_name": ref.name,
        "registered_version": ref.version,
    }
    return model


def _load_pipeline_dir(path: Path, uri: str) -> ScoringModel:
    """The members of a downloaded pipeline pyfunc (``MLmodel`` + ``artifacts/member_<i>``)."""
    import yaml

    mlmodel = path / MLMODEL_FILE
    if not mlmodel.is_file():
        raise FileNotFoundError(
            f"{uri}: no {MLMODEL_FILE} in the downloaded model; not a model logged by automl"
        )
    pyfunc = (yaml.safe_load(mlmodel.read_text()).get("flavors") or {}).get("python_function") or {}
    artifacts: dict[str, Any] = pyfunc.get("artifacts") or {}
    config = pyfunc.get("config") or {}
    count = int(config.get("members", 0))
    if count == 0 or any(f"member_{i}" not in artifacts for i in range(count)):
        raise ValueError(f"{uri}: not an automl pipeline model (no member model directories)")
    members = [load_single(path / artifacts[f"member_{i}"]["path"]) for i in range(count)]
    if count == 1:
        return members[0]
    weights = [float(w) for w in config.get("weights") or [1.0] * count]
    total = sum(weights)
    return EnsemblePredictor(members, [w / total for w in weights], {"members": count, "source": uri})
