"""Model directories into MLflow: each model logged with its library's flavour (``mlflow.xgboost``,
``.lightgbm``, ``.catboost``, loaded from the native file) and as the preprocessor + model ``pyfunc``
pipeline (one member, or an ensemble), both with a signature and an input example.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from app.learners import learner
from app.train.ensemble import is_ensemble_dir, read_ensemble

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.models import Model

    from app.data.encode import Preprocessor
    from app.train.model import Predictor

ENTRY_FILE = Path(__file__).with_name("_pyfunc_entry.py")
PIPELINE_PACKAGES = ("mlflow", "numpy", "pandas", "pyarrow")


@dataclass
class ModelLogResult:
    """What ``log_model`` logged: the pyfunc pipeline, the native-flavour models, the registered version."""

    pipeline: LoggedModelRef
    native: list[LoggedModelRef] = field(default_factory=list)
    registered_name: str | None = None
    registered_version: str | None = None

    @property
    def model_uri(self) -> str:
        return self.pipeline.uri


@dataclass(frozen=True)
class LoggedModelRef:
    """A model logged to MLflow (an MLflow 3 ``LoggedModel``): load it from ``uri``."""

    model_id: str
    name: str
    flavor: str

    @property
    def uri(self) -> str:
        return f"models:/{self.model_id}"


def read_metadata(model_dir: str | Path) -> dict[str, Any]:
    from app.train.model import METADATA_FILE

    path = Path(model_dir) / METADATA_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{model_dir}: no {METADATA_FILE}; not a model directory written by save_model"
        )
    return json.loads(path.read_text())


def expand_models(model: Any, scratch: Path) -> tuple[list[Path], list[float] | None]:
    """Member model directories and weights of what ``log_model`` was given: a model directory, an
    ensemble directory (``ensemble.json`` from the search stage), a ``TrainResult``, a ``Predictor``, an
    ``EnsemblePredictor``, or a list of single models (equal weights)."""
    if isinstance(model, list | tuple):
        return [as_model_dir(m, scratch / f"member_{i}") for i, m in enumerate(model)], None
    if isinstance(model, str | os.PathLike) and is_ensemble_dir(model):
        dirs, weights, _ = read_ensemble(model)
        return dirs, weights
    if hasattr(model, "members") and hasattr(model, "weights"):  # an EnsemblePredictor
        members = [as_model_dir(m, scratch / f"member_{i}") for i, m in enumerate(model.members)]
        return members, [float(w) for w in model.weights]
    return [as_model_dir(model, scratch / "member_0")], None


def as_model_dir(model: Any, scratch: Path) -> Path:
    """The model directory of a path, a ``TrainResult`` or a ``Predictor`` (written under ``scratch``)."""
    from app.train.model import save_model, write_model_dir

    if isinstance(model, str | os.PathLike):
        read_metadata(model)
        return Path(model)
    if hasattr(model, "history") and hasattr(model, "preprocessor"):  # a TrainResult
        if getattr(model, "model_dir", None):
            return Path(model.model_dir)
        return save_model(model, scratch)
    if hasattr(model, "predict_scores") and hasattr(model, "preprocessor"):  # a Predictor
        return write_model_dir(scratch, model.family, model.model, model.preprocessor, dict(model.metadata))
    raise TypeError(
        f"cannot log {type(model).__name__} as a model: pass a model directory, a TrainResult or a Predictor"
    )


def example_from_preprocessor(pre: Preprocessor, rows: int = 2) -> pd.DataFrame:
    """A small raw input frame of the right columns and types, for when the caller gives no example."""
    data: dict[str, Any] = {}
    for name in pre.features:
        if name in pre.categories:
            levels = pre.categories[name] or ["unknown"]
            data[name] = [levels[i % len(levels)] for i in range(rows)]
        elif name in pre.datetime:
            data[name] = pd.to_datetime(["2024-01-01"] * rows)
        else:
            data[name] = np.zeros(rows, dtype=np.float64)
    return pd.DataFrame(data)


def log_models(
    client: MlflowClient,
    *,
    experiment_id: str,
    run_id: str,
    members: Sequence[Path],
    weights: Sequence[float] | None = None,
    name: str = "model",
    registered_model_name: str | None = None,
    input_example: pd.DataFrame | None = None,
) -> ModelLogResult:
    """The pipeline pyfunc over ``members`` (model directories), each member with its flavour, their
    feature importance as ``NAME/feature_importance.json``, and the pipeline registered as a new version."""
    from app.data.encode import Preprocessor
    from app.train.model import PREPROCESSOR_FILE

    pre = Preprocessor.load(Path(members[0]) / PREPROCESSOR_FILE)
    if input_example is None:
        input_example = example_from_preprocessor(pre)
    else:  # the pipeline's input is the raw feature columns: no target, no extra columns
        input_example = input_example[list(pre.features)].head(5).reset_index(drop=True)
    where = dict(experiment_id=experiment_id, run_id=run_id)
    save = pipeline_saver(members, weights, input_example)
    result = ModelLogResult(pipeline=log_saved_model(client, **where, name=name, flavor="pyfunc", save=save))
    importance = {}
    for i, member in enumerate(members):
        meta = read_metadata(member)
        suffix = meta["family"] if len(members) == 1 else f"member{i}-{meta['family']}"
        save = native_saver(Path(member), input_example)
        result.native.append(
            log_saved_model(client, **where, name=f"{name}-{suffix}", flavor=meta["family"], save=save)
        )
        importance[suffix] = meta.get("feature_importance") or {}
    client.log_dict(run_id, importance, f"{name}/feature_importance.json")
    if registered_model_name:
        from app.tracking.registry import ModelRegistry

        pipeline = result.pipeline
        version = ModelRegistry(client).register(
            registered_model_name, pipeline.uri, run_id=run_id, model_id=pipeline.model_id
        )
        result.registered_name, result.registered_version = registered_model_name, version.version
    return result


def log_saved_model(
    client: MlflowClient,
    *,
    experiment_id: str,
    run_id: str,
    name: str,
    flavor: str,
    save: Callable[[str, Model], None],
    tags: dict[str, str] | None = None,
) -> LoggedModelRef:
    """Create a ``LoggedModel`` for ``run_id``, let ``save(path, mlflow_model)`` write it, upload it.

    This is what ``mlflow.<flavor>.log_model`` does, but through ``client`` (its tracking URI) rather
    than the process-wide one, and without an active fluent run.
    """
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus
    from mlflow.models import Model

    logged = client.create_logged_model(experiment_id, name=name, source_run_id=run_id, tags=tags)
    try:
        client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
        with tempfile.TemporaryDirectory(prefix="automl-mlflow-model-") as tmp:
            local = os.path.join(tmp, name)
            mlflow_model = Model(
                artifact_path=logged.artifact_location,
                model_uuid=logged.model_id,
                run_id=run_id,
                model_id=logged.model_id,
            )
            save(local, mlflow_model)
            client.log_model_artifacts(logged.model_id, local)
    except BaseException:
        client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
        raise
    client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    return LoggedModelRef(model_id=logged.model_id, name=name, flavor=flavor)


def native_saver(model_dir: Path, input_example: pd.DataFrame) -> Callable[[str, Model], None]:
    """Saves the booster of ``model_dir`` with its library's MLflow flavour (read from the native file)."""
    from mlflow.models import infer_signature

    from app.train.load import load_model

    predictor = load_model(model_dir)
    encoded = encoded_frame(predictor, input_example)
    with warnings.catch_warnings():  # CatBoost's int32 category codes use -1, never NaN, for missing
        warnings.filterwarnings("ignore", message=".*Inferred schema contains integer column")
        signature = infer_signature(encoded, predictor.predict_scores(input_example))
    reqs = _requirements(*learner(predictor.family).PACKAGES)

    def save(path: str, mlflow_model: Model) -> None:
        kwargs = dict(
            mlflow_model=mlflow_model,
            signature=signature,
            input_example=encoded,
            pip_requirements=reqs,
            metadata={"automl_family": predictor.family, "automl_input": "encoded features"},
        )
        learner(predictor.family).save_mlflow(predictor.model, path, **kwargs)

    return save


def pipeline_saver(
    members: Sequence[Path], weights: Sequence[float] | None, input_example: pd.DataFrame
) -> Callable[[str, Model], None]:
    """Saves the preprocessor + model pipeline pyfunc (``PipelineModel``) over ``members``' directories."""
    from mlflow.models import infer_signature

    from app.train.load import load_model

    predictors = [load_model(m) for m in members]
    w = np.asarray(weights or [1.0] * len(members), dtype=np.float64)
    scores = sum(wi / w.sum() * p.predict_scores(input_example) for wi, p in zip(w, predictors, strict=True))
    first = predictors[0]
    output = scores if first.task == "regression" else first.preprocessor.decode_labels(np.argmax(scores, 1))
    signature = infer_signature(input_example, output, params={"method": "predict"})
    packages = sorted({pkg for p in predictors for pkg in learner(p.family).PACKAGES})
    reqs = _requirements(*packages, *PIPELINE_PACKAGES)

    def save(path: str, mlflow_model: Model) -> None:
        import mlflow.pyfunc

        with tempfile.TemporaryDirectory() as staging:
            # MLflow stores each artifact under its directory's base name: stage them as member_<i>
            artifacts = {
                f"member_{i}": str(shutil.copytree(member, Path(staging, "members", f"member_{i}")))
                for i, member in enumerate(members)
            }
            mlflow.pyfunc.save_model(
                path,
                python_model=str(ENTRY_FILE),
                artifacts=artifacts,
                model_config={"members": len(members), "weights": w.tolist()},
                signature=signature,
                input_example=input_example,
                pip_requirements=reqs,
                mlflow_model=mlflow_model,
                metadata={"automl_families": [p.family for p in predictors], "automl_task": first.task},
                # Without this MLflow copies uv.lock/pyproject.toml from whatever the cwd is.
                uv_project_path=staging,
            )

    return save


def encoded_frame(predictor: Predictor, frame: pd.DataFrame) -> pd.DataFrame:
    """The features as the native booster takes them (the learner's ``native_frame``)."""
    columns = predictor.preprocessor.transform(frame, with_target=False)
    return learner(predictor.family).native_frame(columns, predictor.preprocessor)


def _requirements(*packages: str) -> list[str]:
    import importlib.metadata as md

    out = []
    for pkg in dict.fromkeys(("mlflow", *packages)):
        try:
            out.append(f"{pkg}=={md.version(pkg)}")
        except md.PackageNotFoundError:
            out.append(pkg)
    return out
