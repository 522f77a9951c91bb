"""The guide's MetricsCollector: prometheus-client text with the names the dashboards query."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from app.monitor.metrics import MetricsCollector


def samples(text: str) -> dict[tuple[str, str], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, s.labels.get("version", ""))] = s.value
    return out


def test_record_request_exports_prometheus_text_with_the_guide_names():
    metrics = MetricsCollector(model="churn")
    metrics.record_request(model_id="v1.2.3", latency=0.015, status="success", num_predictions=32)
    metrics.record_request(model_id="v1.2.3", latency=0.2, status=503, num_predictions=0)
    metrics.record_cache(model_id="v1.2.3", hits=3, misses=1)
    got = samples(metrics.export_metrics())
    assert got[("automl_requests_total", "v1.2.3")] == 2
    assert got[("automl_errors_total", "v1.2.3")] == 1
    assert got[("automl_predictions_total", "v1.2.3")] == 32
    assert got[("automl_cache_hits_total", "v1.2.3")] == 3
    assert got[("automl_request_latency_seconds_count", "v1.2.3")] == 2
    assert 'le="0.025"' in metrics.export_metrics()


def test_two_collectors_keep_their_own_counts():
    a, b = MetricsCollector(), MetricsCollector()
    a.record_request(model_id="1", latency=0.01)
    assert ("automl_requests_total", "1") not in samples(b.export_metrics())
