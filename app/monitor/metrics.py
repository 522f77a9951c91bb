"""The project's metric names in one place, and the guide's ``MetricsCollector`` built on
prometheus-client.

Serve replicas export these names through Ray (``app.serve.telemetry``), where Prometheus sees them with a
``ray_`` prefix; ``MetricsCollector`` exports the same names, unprefixed, from any process.
"""

from __future__ import annotations

from dataclasses import dataclass

TAG_KEYS = ("model", "version")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True)
class MetricSpec:
    key: str
    name: str
    kind: str  # counter | histogram | gauge
    description: str


SPECS = (
    MetricSpec("requests", "automl_requests", "counter", "Prediction requests answered (any status)."),
    MetricSpec("errors", "automl_errors", "counter", "Prediction requests answered with an error status."),
    MetricSpec("cache_hits", "automl_cache_hits", "counter", "Rows answered from the prediction cache."),
    MetricSpec(
        "cache_misses",
        "automl_cache_misses",
        "counter",
        "Rows the prediction cache did not have (or could not be asked for).",
    ),
    MetricSpec(
        "cache_errors", "automl_cache_errors", "counter", "Prediction cache calls that failed or timed out."
    ),
    MetricSpec("predictions", "automl_predictions", "counter", "Rows predicted by the model."),
    MetricSpec(
        "latency", "automl_request_latency_seconds", "histogram", "Prediction request latency, seconds."
    ),
    MetricSpec("model_info", "automl_model_loaded", "gauge", "1 for the model version being served."),
)
SPEC = {s.key: s for s in SPECS}
# The monitor actor's gauges: (name, description, tag keys).
MONITOR_GAUGES = {
    "feature_psi": (
        "automl_feature_drift_psi",
        "PSI of a served feature against training.",
        ("model", "feature"),
    ),
    "feature_ks": (
        "automl_feature_drift_ks",
        "KS statistic of a served numeric feature.",
        ("model", "feature"),
    ),
    "prediction_psi": (
        "automl_prediction_drift_psi",
        "PSI of served predictions against validation.",
        ("model",),
    ),
    "score": ("automl_model_score", "Rolling score on labelled predictions.", ("model", "metric")),
    "degraded": (
        "automl_model_degraded",
        "1 when the rolling score is worse than the baseline allows.",
        ("model",),
    ),
    "drifted": ("automl_drift_detected", "1 when a feature or the predictions drifted.", ("model",)),
    "window": ("automl_monitor_window_rows", "Rows in the monitor's windows.", ("model", "window")),
}


RETRAIN_DECISIONS = (
    "automl_retrain_decisions",
    "Retraining decisions of the monitor (alert_only, waiting, running, cooldown, submitted, failed).",
    ("model", "decision"),
)


def exported_names() -> set[str]:
    """Every metric name as Prometheus sees it through Ray (``ray_`` prefix, ``_total``/``_bucket``)."""
    names = {f"ray_{name}" for name, _, _ in MONITOR_GAUGES.values()} | {f"ray_{RETRAIN_DECISIONS[0]}_total"}
    for s in SPECS:
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}[
            s.kind
        ]
        names |= {f"ray_{s.name}{suffix}" for suffix in suffixes}
    return names


class MetricsCollector:
    """The guide's collector: ``record_request(...)`` and ``export_metrics()`` in the Prometheus text
    format, on a registry of its own (so two collectors never share counts).

    Example (guide):
        >>> metrics = MetricsCollector()
        >>> metrics.record_request(model_id="v1.2.3", latency=0.015, status="success", num_predictions=32)
        >>> "automl_requests_total" in metrics.export_metrics()
        True
    """

    def __init__(self, *, model: str = "automl") -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.model = model
        self.registry = CollectorRegistry()
        kinds = {"counter": Counter, "gauge": Gauge}
        self._m = {}
        for spec in SPECS:
            if spec.kind == "histogram":
                self._m[spec.key] = Histogram(
                    spec.name, spec.description, TAG_KEYS, buckets=LATENCY_BUCKETS, registry=self.registry
                )
            else:
                self._m[spec.key] = kinds[spec.kind](
                    spec.name, spec.description, TAG_KEYS, registry=self.registry
                )

    def record_request(
        self, *, model_id: str, latency: float, status: str | int = "success", num_predictions: int = 0
    ) -> None:
        """One answered request: ``status`` is "success"/"error" or an HTTP status code."""
        tags = (self.model, str(model_id))
        failed = status != "success" and not (isinstance(status, int) and status < 400)
        self._m["requests"].labels(*tags).inc()
        if failed:
            self._m["errors"].labels(*tags).inc()
        self._m["predictions"].labels(*tags).inc(num_predictions)
        self._m["latency"].labels(*tags).observe(latency)

    def record_cache(self, *, model_id: str, hits: int = 0, misses: int = 0) -> None:
        tags = (self.model, str(model_id))
        self._m["cache_hits"].labels(*tags).inc(hits)
        self._m["cache_misses"].labels(*tags).inc(misses)

    def export_metrics(self) -> str:
        from prometheus_client import generate_latest

        return generate_latest(self.registry).decode()
