"""The serving metrics, one place: fixed names and tag keys, created inside the replica that owns them.

Ray exports them on each node's metrics endpoint with a ``ray_`` prefix (and ``_total`` on counters):
``ray_automl_requests_total``, ``ray_automl_errors_total``, ``ray_automl_request_latency_seconds``,
``ray_automl_cache_hits_total``, ``ray_automl_cache_misses_total``, ``ray_automl_cache_errors_total``,
``ray_automl_predictions_total``, ``ray_automl_model_info``. Requests only add to local counts; a
background task hands them to Ray once a second, so a request pays no metrics call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter as Tally
from dataclasses import dataclass, field

TAG_KEYS = ("model", "version")
LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]
COUNTERS = {
    "requests": "automl_requests",
    "errors": "automl_errors",
    "cache_hits": "automl_cache_hits",
    "cache_misses": "automl_cache_misses",
    "cache_errors": "automl_cache_errors",
    "predictions": "automl_predictions",
}
DESCRIPTIONS = {
    "requests": "Prediction requests answered (any status).",
    "errors": "Prediction requests answered with an error status.",
    "cache_hits": "Rows answered from the prediction cache.",
    "cache_misses": "Rows the prediction cache did not have (or could not be asked for).",
    "cache_errors": "Prediction cache calls that failed or timed out.",
    "predictions": "Rows predicted by the model.",
}


@dataclass
class ServeMetrics:
    """Counts and latencies of one replica, flushed to Ray's metrics by ``run_flusher``."""

    model: str = ""
    version: str = ""
    counts: Tally = field(default_factory=Tally)
    latencies: list[float] = field(default_factory=list)
    _ray: dict | None = None

    def record(self, *, latency_s: float, status: int, rows: int, predicted: int, hits: int, misses: int):
        self.counts["requests"] += 1
        self.counts["errors"] += status >= 400
        self.counts["predictions"] += predicted
        self.counts["cache_hits"] += hits
        self.counts["cache_misses"] += misses
        self.latencies.append(latency_s)

    def set_model(self, model: str, version: str) -> None:
        self.flush()  # what was counted so far belongs to the old version
        old = (self.model, self.version)
        self.model, self.version = model, version
        if self._ray is not None:
            if old[0]:
                self._ray["info"].set(0, tags=dict(zip(TAG_KEYS, old, strict=True)))
            self._ray["info"].set(1, tags=self.tags)

    @property
    def tags(self) -> dict[str, str]:
        return {"model": self.model, "version": self.version}

    def flush(self) -> None:
        ray_metrics = self._metrics()
        if ray_metrics is None:
            return
        counts, self.counts = self.counts, Tally()
        latencies, self.latencies = self.latencies, []
        tags = self.tags
        for key, value in counts.items():
            if value:
                ray_metrics[key].inc(value, tags=tags)
        for value in latencies:
            ray_metrics["latency"].observe(value, tags=tags)

    async def run_flusher(self, every_s: float = 1.0) -> None:
        while True:
            await asyncio.sleep(every_s)
            with contextlib.suppress(Exception):  # metrics never take a replica down
                self.flush()

    def _metrics(self) -> dict | None:
        if self._ray is None:
            try:
                from ray.serve import metrics
            except ImportError:
                return None
            made = {
                key: metrics.Counter(name, description=DESCRIPTIONS[key], tag_keys=TAG_KEYS)
                for key, name in COUNTERS.items()
            }
            made["latency"] = metrics.Histogram(
                "automl_request_latency_seconds",
                description="Prediction request latency inside the replica, seconds.",
                boundaries=LATENCY_BUCKETS,
                tag_keys=TAG_KEYS,
            )
            made["info"] = metrics.Gauge(
                "automl_model_info",
                description="1 for the model version this replica serves.",
                tag_keys=TAG_KEYS,
            )
            self._ray = made
            if self.model:
                made["info"].set(1, tags=self.tags)
        return self._ray
