"""The tracker's artifacts and models: files, JSON and tables, the run's leaderboard and profile, and
models in their flavours and as the pyfunc pipeline (``app.tracking.flavors``), registered on request.

A mixin of ``MLflowTracker``: it relies on the tracker's active run, buffer flushing and offline
fallback (``_active``, ``_flush``, ``_do``, ``_lock``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from app.tracking.flavors import ModelLogResult


class ArtifactLogging:
    """``log_artifact``, ``log_dict``, ``log_table``, ``log_run_artifacts``, ``log_model``."""

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> None:
        """A file, or a directory's contents under ``artifact_path/<dir name>``."""
        with self._lock:
            state = self._active()
            path = Path(local_path)

            def remote() -> None:
                if path.is_dir():
                    sub = "/".join(p for p in (artifact_path, path.name) if p)
                    self.client.log_artifacts(state.run_id, str(path), sub)
                else:
                    self.client.log_artifact(state.run_id, str(path), artifact_path)

            self._do(state, remote, lambda: state.pending.add_artifact(path, artifact_path))

    def log_dict(self, data: Any, artifact_file: str) -> None:
        import json

        self._log_text(json.dumps(data, indent=2, default=str), artifact_file)

    def log_table(self, frame: pd.DataFrame, artifact_file: str) -> None:
        """A DataFrame as CSV (``.csv``) or JSON records (anything else), e.g. the leaderboard."""
        if artifact_file.endswith(".csv"):
            self._log_text(frame.to_csv(index=False), artifact_file)
        else:
            self._log_text(frame.to_json(orient="records", indent=1), artifact_file)

    def log_run_artifacts(
        self,
        *,
        leaderboard: pd.DataFrame | None = None,
        profile: Any = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """The AutoML run's tables: ``leaderboard.csv``, the data statistics profile as
        ``data_profile.json`` (a ``DatasetProfile``, a dict, or a JSON file) and ``extra`` dicts as JSON."""
        if leaderboard is not None:
            self.log_table(leaderboard, "leaderboard.csv")
        if profile is not None:
            if isinstance(profile, str | Path):
                self.log_artifact(profile)
            else:
                data = profile.to_dict() if hasattr(profile, "to_dict") else profile
                self.log_dict(data, "data_profile.json")
        for name, data in (extra or {}).items():
            self.log_dict(data, name if name.endswith(".json") else f"{name}.json")

    def log_model(
        self,
        model: Any,
        *,
        name: str = "model",
        registered_model_name: str | None = None,
        input_example: pd.DataFrame | None = None,
        weights: Sequence[float] | None = None,
    ) -> ModelLogResult | None:
        """Log a model directory, ``TrainResult`` or ``Predictor``, or an ensemble (an ``ensemble.json``
        directory, an ``EnsemblePredictor``, or a list of single models with ``weights``).

        Logs the preprocessor + model pipeline as a pyfunc named ``name``, each booster with its
        library's flavour (``name-<family>``), its feature importance, and registers the pipeline under
        ``registered_model_name`` (default: the config's) as a new version. Returns None while offline.
        """
        from app.tracking.flavors import expand_models

        registered_model_name = registered_model_name or self.config.registered_model_name
        with self._lock, tempfile.TemporaryDirectory(prefix="automl-log-model-") as scratch:
            state = self._active()
            members, found_weights = expand_models(model, Path(scratch))
            weights = weights or found_weights
            self._flush(state)
            return self._do(
                state,
                lambda: self.log_model_to_run(
                    state.run_id,
                    members,
                    weights=weights,
                    name=name,
                    registered_model_name=registered_model_name,
                    input_example=input_example,
                ),
                lambda: state.pending.add_model(
                    members,
                    weights=list(weights) if weights else None,
                    name=name,
                    registered_model_name=registered_model_name,
                    input_example=input_example,
                ),
            )

    def log_model_to_run(
        self,
        run_id: str,
        members: Sequence[Path],
        *,
        weights: Sequence[float] | None = None,
        name: str = "model",
        registered_model_name: str | None = None,
        input_example: pd.DataFrame | None = None,
    ) -> ModelLogResult:
        """``log_model`` for an existing run id (no buffering, no offline fallback)."""
        from app.tracking.flavors import log_models

        if self._stack and self._stack[-1].run_id == run_id:
            experiment_id = self.experiment_id
        else:  # e.g. a run uploaded by sync_pending, possibly in another experiment
            experiment_id = self.client.get_run(run_id).info.experiment_id
        return log_models(
            self.client,
            experiment_id=experiment_id,
            run_id=run_id,
            members=members,
            weights=weights,
            name=name,
            registered_model_name=registered_model_name,
            input_example=input_example,
        )

    def _log_text(self, text: str, artifact_file: str) -> None:
        with tempfile.TemporaryDirectory(prefix="automl-artifact-") as tmp:
            path = Path(tmp) / Path(artifact_file).name
            path.write_text(text)
            parent = str(Path(artifact_file).parent)
            self.log_artifact(path, None if parent == "." else parent)
