"""The monitor's state without Ray: samples in, feedback joined by prediction id, degradation when
labels flip, windows that survive a checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

from app.monitor.actor import ModelMonitor
from app.monitor.performance import PerformanceMonitor, choose_metric
from app.serve_config import MonitorConfig


def monitor(**config) -> ModelMonitor:
    cfg = MonitorConfig(min_labels=20, label_window=200, min_window=50, **config)
    return ModelMonitor(
        model="m@1",
        task="binary",
        classes=["no", "yes"],
        features=["x"],
        config=cfg,
        metric="accuracy",
        baseline=0.9,
    )


def served(m: ModelMonitor, n: int, rng) -> tuple[list[str], np.ndarray]:
    p = rng.uniform(size=n)
    ids = [f"r-{i}" for i in range(n)]
    m.observe(
        {
            "ids": ids,
            "columns": {"x": rng.normal(size=n).tolist()},
            "scores": np.column_stack([1 - p, p]).tolist(),
        }
    )
    return ids, p


def test_feedback_joins_labels_by_prediction_id_and_reports_unknown_ones():
    m = monitor()
    ids, p = served(m, 10, np.random.default_rng(0))
    result = m.feedback([{"prediction_id": ids[0], "label": "yes"}, {"prediction_id": "nope", "label": "no"}])
    assert result == {"joined": 1, "unknown": ["nope"]}
    assert list(m.performance.labels) == [1]


def test_labels_that_agree_keep_the_score_and_flipped_labels_flag_degradation():
    rng = np.random.default_rng(1)
    m = monitor()
    ids, p = served(m, 100, rng)
    m.feedback(
        [{"prediction_id": i, "label": "yes" if q > 0.5 else "no"} for i, q in zip(ids, p, strict=True)]
    )
    assert m.check()["performance"] == {
        "metric": "accuracy", "score": 1.0, "baseline": 0.9, "labels": 100, "degraded": False
    }  # fmt: skip
    ids, p = served(m, 100, rng)
    m.feedback(
        [{"prediction_id": i, "label": "no" if q > 0.5 else "yes"} for i, q in zip(ids, p, strict=True)]
    )
    perf = m.check()["performance"]
    assert perf["degraded"] and perf["score"] == pytest.approx(0.5)


def test_windows_survive_a_checkpoint_round_trip():
    rng = np.random.default_rng(2)
    m = monitor()
    ids, _ = served(m, 30, rng)
    m.feedback([{"prediction_id": ids[0], "label": "yes"}])
    restored = monitor()
    restored.restore(m.state())
    assert len(restored.drift.predictions) == 30 and list(restored.performance.labels) == [1]
    assert restored.feedback([{"prediction_id": ids[1], "label": "no"}])["joined"] == 1


def test_performance_monitor_guide_surface_and_metric_choice():
    perf = PerformanceMonitor()
    perf.set_baseline(0.92)
    perf.add([1, 0], [[0.2, 0.8], [0.9, 0.1]])
    assert perf.check_degradation() == (False, 1.0)
    assert choose_metric("binary", {"logloss": 0.3, "auc": 0.91}) == ("auc", 0.91)
    assert choose_metric("regression", {"rmse": 2.0}) == ("rmse", 2.0)
    assert choose_metric("multiclass", {}) == ("accuracy", None)
