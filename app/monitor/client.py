"""How a Serve replica talks to its model's monitor: get or create the named actor, hand it samples of
served rows in batches from a background task (never on a request's path), forward feedback."""

from __future__ import annotations

import asyncio
import logging
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.monitor.actor import NAMESPACE, MonitorActor, actor_name
from app.serve_config import MonitorConfig

logger = logging.getLogger(__name__)

FLUSH_EVERY_S = 1.0
MAX_BUFFERED = 50_000  # rows kept while the monitor is away; older samples are dropped


def monitor_spec(
    predictor: Any,
    *,
    name: str,
    version: str,
    source: str,
    config: MonitorConfig,
    tracking_uri: str | None = None,
) -> dict[str, Any]:
    """What a model's monitor is built from: the model's schema, the training profile and the prediction
    reference (see ``training_references``), the rolling metric and its training baseline."""
    from app.monitor.performance import choose_metric

    pre = predictor.preprocessor
    profile, reference = training_references(predictor, source, config, tracking_uri=tracking_uri)
    members = getattr(predictor, "members", [predictor])
    recorded = dict(members[0].metadata.get("metrics") or {})
    metric, baseline = choose_metric(str(pre.task), recorded)
    local = not source.startswith("models:/") and "://" not in source
    state_path = config.state_path or (str(Path(source).parent / "monitor" / version) if local else None)
    return {
        "model": f"{name}@{version}",
        "task": str(pre.task),
        "classes": pre.classes,
        "features": monitored_features(pre),
        "profile": profile,
        "reference_predictions": reference,
        "metric": metric,
        "baseline": baseline,
        "registered_name": predictor.metadata.get("registered_name"),
        "registered_version": predictor.metadata.get("registered_version"),
        "tracking_uri": tracking_uri,
        "config": config.model_dump(),
        "state_path": state_path,
    }


def training_references(
    predictor: Any, source: str, config: MonitorConfig, *, tracking_uri: str | None = None
) -> tuple[dict[str, Any] | None, list[float] | None]:
    """The training data's profile and the validation predictions' reference, from where the fit left
    them: ``config.reference`` (a profile.json), the run folder of a local model directory, or the MLflow
    run that logged a registered model. Either may be missing (that drift is then not checked)."""
    from app.data.stats import DatasetProfile
    from app.train.reference import REFERENCE_FILE, load_reference

    found: dict[str, Path] = {}
    registered = predictor.metadata.get("registered_name")
    # Downloaded files are read here and not needed after: each replica that connects reads them again.
    with tempfile.TemporaryDirectory(prefix="automl-monitor-ref-") as tmp:
        if source.startswith("models:/") and registered:
            version = str(predictor.metadata["registered_version"])
            found = _run_artifacts(registered, version, tracking_uri, ["profile", "reference"], Path(tmp))
        elif "://" not in source:
            for name, file in (("profile", "profile.json"), ("reference", REFERENCE_FILE)):
                for folder in (Path(source), Path(source).parent):
                    if (folder / file).is_file():
                        found.setdefault(name, folder / file)
        profile_path = config.reference or found.get("profile")
        profile = DatasetProfile.load(profile_path).to_dict() if profile_path else None
        reference = load_reference(found["reference"]) if "reference" in found else None
    return profile, reference


def _run_artifacts(
    name: str, version: str, tracking_uri: str | None, wanted: list[str], into: Path
) -> dict[str, Path]:
    """The profile and prediction reference logged with the run of a registered version, downloaded
    ``into`` a folder."""
    import mlflow.artifacts
    from mlflow import MlflowClient

    from app.train.reference import REFERENCE_FILE

    files = {"profile": "data_profile.json", "reference": REFERENCE_FILE}
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    run_id = client.get_model_version(name, version).run_id
    if not run_id:
        return {}
    logged = {f.path for f in client.list_artifacts(run_id)}
    found = {}
    for key in wanted:
        if files[key] in logged:
            found[key] = Path(
                mlflow.artifacts.download_artifacts(
                    run_id=run_id,
                    artifact_path=files[key],
                    dst_path=str(into),
                    tracking_uri=client.tracking_uri,
                )
            )
    return found


def answer_score(answer: dict[str, Any], classes: list[Any] | None) -> Any:
    """What the monitor keeps of one served answer: class probabilities in ``classes`` order, or the value."""
    return [answer[f"proba_{c}"] for c in classes] if classes else answer["prediction"]


def monitored_features(pre: Any) -> list[str]:
    """The raw features whose drift is watched (dates are left out: their range always moves on)."""
    return [f for f in pre.features if f not in pre.datetime]


def ensure_monitor(spec: dict[str, Any]) -> Any:
    """The model's monitor actor, created (detached, restarted when it dies) if it does not exist."""
    import ray

    handle = (
        ray.remote(MonitorActor)
        .options(
            name=actor_name(spec["model"]),
            namespace=NAMESPACE,
            lifetime="detached",
            get_if_exists=True,
            max_restarts=-1,
            num_cpus=0,
        )
        .remote(spec)
    )
    handle.start.remote()
    return handle


class MonitorClient:
    """Samples ``sample_rate`` of the rows a replica serves and sends them every ``FLUSH_EVERY_S``."""

    def __init__(
        self,
        spec: Callable[[], dict[str, Any]],
        *,
        features: list[str],
        sample_rate: float,
        seed: int | None = None,
    ) -> None:
        self.spec, self.features, self.sample_rate = spec, features, sample_rate
        self.rng = random.Random(seed)
        self.buffer: list[tuple[str, dict[str, Any], Any]] = []
        self.handle: Any = None
        self.sent = self.dropped = 0
        self._retry_at = 0.0

    def offer(self, rows: Any, answers: list[dict[str, Any]], classes: list[Any] | None) -> None:
        """Keep a sample of one request's rows (``app.serve.schema.Rows``) with their answers (no I/O;
        only sampled rows are copied)."""
        picked = [i for i in range(len(answers)) if self.rng.random() < self.sample_rate]
        if not picked:
            return
        rows = rows.take(picked).records(self.features)
        for i, row in zip(picked, rows, strict=True):
            answer = answers[i]
            self.buffer.append((answer["prediction_id"], row, answer_score(answer, classes)))
        if len(self.buffer) > MAX_BUFFERED:
            self.dropped += len(self.buffer) - MAX_BUFFERED
            del self.buffer[: len(self.buffer) - MAX_BUFFERED]

    async def flush(self) -> int:
        if not self.buffer or not self._connected():
            return 0
        batch, self.buffer = self.buffer, []
        columns: dict[str, list] = {}
        for _, row, _ in batch:
            for k, v in row.items():
                columns.setdefault(k, []).append(v)
        payload = {"ids": [b[0] for b in batch], "columns": columns, "scores": [b[2] for b in batch]}
        try:
            await asyncio.wait_for(self.handle.observe.remote(payload), timeout=10)
            self.sent += len(batch)
        except Exception as exc:  # noqa: BLE001 - the actor is restarting or gone: look it up again later
            logger.warning(
                "monitor unavailable (%s); %d sampled rows dropped", type(exc).__name__, len(batch)
            )
            self.dropped += len(batch)
            self.handle = None
        return len(batch)

    async def feedback(self, items: list[dict[str, Any]], *, timeout_s: float = 10.0) -> dict[str, Any]:
        if not self._connected():
            raise ConnectionError("the model's monitor is not reachable")
        return await asyncio.wait_for(self.handle.feedback.remote(items), timeout=timeout_s)

    def _connected(self) -> bool:
        if self.handle is not None:
            return True
        if time.monotonic() < self._retry_at:
            return False
        try:
            self.handle = ensure_monitor(self.spec())
        except Exception as exc:  # noqa: BLE001 - try again in a few seconds
            logger.warning("cannot reach the monitor: %s", exc)
            self._retry_at = time.monotonic() + 5
            return False
        return True
