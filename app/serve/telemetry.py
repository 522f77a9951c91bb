"""A replica's serving metrics (names and tag keys from ``app.monitor.metrics``), created inside the
replica that owns them.

Ray exports them on each node's metrics endpoint with a ``ray_`` prefix (and ``_total`` on counters):
``ray_automl_requests_total``, ``ray_automl_errors_total``, ``ray_automl_request_latency_seconds``,
``ray_automl_cache_hits_total``, ``ray_automl_cache_misses_total``, ``ray_automl_cache_errors_total``,
``ray_automl_predictions_total``, ``ray_automl_model_loaded``. Requests only add to local counts; a
background task hands them to Ray ten times a second, so a request pays no metrics call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter as Tally
from dataclasses import dataclass, field

from app.monitor.metrics import LATENCY_BUCKETS, SPEC, SPECS, TAG_KEYS

# Each latency is one Ray ``observe`` call, which is not free: one flush a second under load held the
# replica's event loop long enough to show in the tail latency, several small flushes a second do not
# (profiled with py-spy; docs/performance.md).
FLUSH_EVERY_S = 0.1


@dataclass
class ServeMetrics:
    """Counts and latencies of one replica, flushed to Ray's metrics by ``run_flusher``."""

    model: str = ""
    version: str = ""
    counts: Tally = field(default_factory=Tally)
    latencies: list[float] = field(default_factory=list)
    _ray: dict | None = None

    def record(self, *, latency_s: float, status: int, predicted: int, hits: int, misses: int):
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

    async def run_flusher(self, every_s: float = FLUSH_EVERY_S) -> None:
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
                s.key: metrics.Counter(s.name, description=s.description, tag_keys=TAG_KEYS)
                for s in SPECS
                if s.kind == "counter"
            }
            latency, info = SPEC["latency"], SPEC["model_info"]
            made["latency"] = metrics.Histogram(
                latency.name,
                description=latency.description,
                boundaries=list(LATENCY_BUCKETS),
                tag_keys=TAG_KEYS,
            )
            made["info"] = metrics.Gauge(info.name, description=info.description, tag_keys=TAG_KEYS)
            self._ray = made
            if self.model:
                made["info"].set(1, tags=self.tags)
        return self._ray
