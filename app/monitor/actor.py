"""The monitor of one served model: a named, detached Ray actor that takes samples of served rows and
predictions (sent by the Serve replicas, off the request path), joins ground-truth labels to them, keeps
sliding windows, checks drift and performance every ``check_every_s``, exports the figures as Ray
metrics and checkpoints its windows (JSON) so a restarted actor carries on where it was."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Mapping
from typing import Any

from app import atomic
from app.monitor.drift import DriftDetector
from app.monitor.metrics import MONITOR_GAUGES, RETRAIN_DECISIONS
from app.monitor.performance import PerformanceMonitor
from app.monitor.retrain import Retrainer
from app.serve_config import MonitorConfig
from app.train.reference import summarize

logger = logging.getLogger(__name__)

NAMESPACE = "automl"
STATE_FILE = "monitor_state.json"


def actor_name(model: str) -> str:
    return f"automl-monitor:{model}"


class ModelMonitor:
    """Windows and checks of one model (the actor's state; usable without Ray in tests)."""

    def __init__(
        self,
        *,
        model: str,
        task: str,
        classes: list[Any] | None,
        features: list[str],
        config: MonitorConfig,
        profile: Any = None,
        reference_predictions: list[float] | None = None,
        metric: str = "accuracy",
        baseline: float | None = None,
    ) -> None:
        self.model, self.task, self.classes, self.config = model, task, classes, config
        self.codes = {str(c): i for i, c in enumerate(classes or [])}
        self.drift = DriftDetector(
            config.window_size,
            psi_threshold=config.psi_threshold,
            ks_threshold=config.ks_threshold,
            min_window=config.min_window,
        )
        if profile is not None:
            self.drift.set_reference_profile(profile, [f for f in features if f in profile.columns])
        if reference_predictions:
            self.drift.set_reference_distribution(reference_predictions)
        self.performance = PerformanceMonitor(
            metric=metric,
            window_size=config.label_window,
            tolerance=config.degradation_tolerance,
            min_labels=config.min_labels,
        )
        if baseline is not None:
            self.performance.set_baseline(baseline)
        self.served: OrderedDict[str, Any] = OrderedDict()  # prediction id -> scores, for feedback
        self.last: dict[str, Any] = {}

    def observe(self, batch: Mapping[str, Any]) -> int:
        """A sample of served rows: ``{"ids": [...], "columns": {feature: [...]}, "scores": [...]}``."""
        ids, scores = batch["ids"], batch["scores"]
        self.drift.add_rows(batch["columns"])
        self.drift.add_predictions(summarize(scores).tolist())
        for pid, score in zip(ids, scores, strict=True):
            self.served[pid] = score
        while len(self.served) > self.config.label_window * 5:
            self.served.popitem(last=False)
        return len(ids)

    def feedback(self, items: list[Mapping[str, Any]]) -> dict[str, Any]:
        """Labels for served predictions: ``[{"prediction_id": ..., "label": ...}]``; unknown ids (not
        sampled, or too old) are returned, not errors."""
        labels, scores, unknown = [], [], []
        for item in items:
            pid = str(item.get("prediction_id"))
            if "score" not in item and pid not in self.served:
                unknown.append(pid)
                continue
            label = item["label"]
            if self.task != "regression":
                if str(label) not in self.codes:
                    unknown.append(pid)
                    continue
                label = self.codes[str(label)]
            labels.append(label)
            scores.append(item["score"] if "score" in item else self.served[pid])
        if labels:
            self.performance.add(labels, scores)
        return {"joined": len(labels), "unknown": unknown}

    def check(self) -> dict[str, Any]:
        """Drift of each feature and of the predictions, and the rolling score against the baseline."""
        features = self.drift.detect_feature_drift()
        prediction = (False, 0.0)
        if self.drift.prediction_reference is not None:
            prediction = self.drift.detect_prediction_drift()
        degraded, score = self.performance.check_degradation()
        self.last = {
            "time": time.time(),
            "features": {
                f.feature: {"psi": f.psi, "ks": f.ks, "rows": f.rows, "drifted": f.drifted} for f in features
            },
            "prediction_drift": {
                "drifted": prediction[0],
                "psi": prediction[1],
                "rows": len(self.drift.predictions),
            },
            "performance": {
                "metric": self.performance.metric.name,
                "score": score,
                "baseline": self.performance.baseline,
                "labels": len(self.performance.labels),
                "degraded": degraded,
            },
            "drifted": any(f.drifted for f in features) or prediction[0],
        }
        return self.last

    def state(self) -> dict[str, Any]:
        """The windows as JSON-able lists (what a restarted actor reloads)."""
        return {
            "model": self.model,
            "features": {name: list(window) for name, window in self.drift.features.items()},
            "predictions": list(self.drift.predictions),
            "labels": list(self.performance.labels),
            "scores": list(self.performance.scores),
            "served": list(self.served.items())[-self.config.label_window :],
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        for name, values in state.get("features", {}).items():
            if name in self.drift.features:
                self.drift.features[name].extend(values)
        self.drift.predictions.extend(state.get("predictions", []))
        self.performance.labels.extend(state.get("labels", []))
        self.performance.scores.extend(state.get("scores", []))
        self.served.update((str(k), v) for k, v in state.get("served", []))


class MonitorActor:
    """The Ray actor around ``ModelMonitor``: checks on a timer, Ray metrics, JSON checkpoints."""

    def __init__(self, spec: dict[str, Any]) -> None:
        from app.data.stats import DatasetProfile

        self.config = MonitorConfig.model_validate(spec["config"])
        profile = DatasetProfile.from_dict(spec["profile"]) if spec.get("profile") else None
        self.monitor = ModelMonitor(
            model=spec["model"],
            task=spec["task"],
            classes=spec.get("classes"),
            features=spec["features"],
            config=self.config,
            profile=profile,
            reference_predictions=spec.get("reference_predictions"),
            metric=spec["metric"],
            baseline=spec.get("baseline"),
        )
        self.state_path = spec.get("state_path")
        self.retrainer = Retrainer(
            self.config.retrain, model=spec["model"], registered_name=spec.get("registered_name")
        )
        self.decisions: deque[dict[str, Any]] = deque(maxlen=100)
        self.registered = (spec.get("registered_name"), spec.get("registered_version"))
        self.tracking_uri = spec.get("tracking_uri")
        self._tagged: str | None = None
        self.restored = self._load()
        self._task: asyncio.Task | None = None
        self._gauges: dict | None = None

    async def start(self) -> bool:
        """Start the periodic check (idempotent); True once running."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())
        return True

    async def observe(self, batch: dict[str, Any]) -> int:
        return self.monitor.observe(batch)

    async def feedback(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        return self.monitor.feedback(items)

    async def check(self) -> dict[str, Any]:
        result = self.monitor.check()
        decision = await asyncio.to_thread(self.retrainer.decide, result)
        if decision is not None:
            self.decisions.append(decision.to_dict())
            logger.warning(
                "monitor %s: %s — %s (job %s)",
                self.monitor.model,
                decision.decision,
                decision.reason,
                decision.job_id,
            )
            result["decision"] = decision.to_dict()
            if decision.decision != self._tagged:
                await asyncio.to_thread(self._tag, decision.to_dict())
        self._export(result)
        await asyncio.to_thread(self._save)
        return result

    async def status(self) -> dict[str, Any]:
        return {
            "model": self.monitor.model,
            "restored": self.restored,
            "window_rows": {k: len(v) for k, v in self.monitor.drift.features.items()},
            "predictions": len(self.monitor.drift.predictions),
            "labels": len(self.monitor.performance.labels),
            "last_check": self.monitor.last,
            "decisions": list(self.decisions),
        }

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.check_every_s)
            try:
                await self.check()
            except Exception:  # noqa: BLE001 - a failed check is logged; the next one runs
                logger.exception("monitor check failed")

    def _export(self, result: dict[str, Any]) -> None:
        from ray.util import metrics

        if self._gauges is None:
            self._gauges = {
                key: metrics.Gauge(name, description, tag_keys=tags)
                for key, (name, description, tags) in MONITOR_GAUGES.items()
            }
            name, description, tags = RETRAIN_DECISIONS
            self._gauges["decisions"] = metrics.Counter(name, description, tag_keys=tags)
        g, model = self._gauges, self.monitor.model
        for name, f in result["features"].items():
            g["feature_psi"].set(f["psi"], tags={"model": model, "feature": name})
            if f["ks"] is not None:
                g["feature_ks"].set(f["ks"], tags={"model": model, "feature": name})
        g["prediction_psi"].set(result["prediction_drift"]["psi"], tags={"model": model})
        g["drifted"].set(float(result["drifted"]), tags={"model": model})
        perf = result["performance"]
        if perf["score"] is not None:
            g["score"].set(perf["score"], tags={"model": model, "metric": perf["metric"]})
        g["degraded"].set(float(perf["degraded"]), tags={"model": model})
        g["window"].set(result["prediction_drift"]["rows"], tags={"model": model, "window": "predictions"})
        g["window"].set(perf["labels"], tags={"model": model, "window": "labels"})
        if "decision" in result:
            g["decisions"].inc(1, tags={"model": model, "decision": result["decision"]["decision"]})

    def _tag(self, decision: dict[str, Any]) -> None:
        """The latest kind of decision on the registered version it concerns, as MLflow tags (written when
        the kind changes, so a persisting drift does not write a tag every check)."""
        name, version = self.registered
        if not name or not version:
            return
        try:
            from mlflow import MlflowClient

            client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
            for key in ("decision", "reason", "job_id", "time"):
                value = decision.get(key)
                client.set_model_version_tag(
                    name, str(version), f"automl.monitor.{key}", str(value or "")[:5000]
                )
            self._tagged = decision["decision"]
        except Exception:  # noqa: BLE001 - the registry being away costs the monitor nothing; next time
            logger.exception("tagging %s v%s with the monitor's decision failed", name, version)

    def _save(self) -> None:
        if not self.state_path:
            return
        from app.data.filesystem import filesystem_for

        fs, root = filesystem_for(self.state_path)
        fs.create_dir(root, recursive=True)
        data = json.dumps(self.monitor.state(), default=atomic.plain).encode()
        tmp, final = f"{root}/.{STATE_FILE}.tmp", f"{root}/{STATE_FILE}"
        with fs.open_output_stream(tmp) as out:
            out.write(data)
        fs.move(tmp, final)

    def _load(self) -> bool:
        if not self.state_path:
            return False
        import pyarrow.fs as pafs

        from app.data.filesystem import filesystem_for

        fs, root = filesystem_for(self.state_path)
        path = f"{root}/{STATE_FILE}"
        if fs.get_file_info(path).type != pafs.FileType.File:
            return False
        with fs.open_input_stream(path) as src:
            self.monitor.restore(json.loads(src.read()))
        return True
