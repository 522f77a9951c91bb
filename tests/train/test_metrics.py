"""One metric type: its direction, its weighted score, and what every stage asks of it."""

import numpy as np
import pytest

from app.search.settings import RayTuneSettings
from app.search.tuner import search_spec
from app.train.metrics import METRICS, default_metric, get_metric, resolve_metrics


def test_the_search_training_and_registry_take_one_direction_per_metric():
    for name, m in METRICS.items():
        task = "regression" if m.needs == "value" else "binary"
        assert search_spec(RayTuneSettings(metric=name), task).mode == m.mode
        for family in ("xgboost", "lightgbm", "catboost"):
            assert resolve_metrics(family, task, [name])[0].maximize == m.maximize
    assert get_metric("auc").gain(0.91, 0.90) == pytest.approx(0.01)
    assert get_metric("logloss").gain(0.30, 0.32) == pytest.approx(0.02)


def test_a_library_metric_gets_its_direction_from_its_name():
    assert get_metric("ndcg@5").mode == "max" and get_metric("aucpr").mode == "max"
    assert get_metric("mape").mode == "min" and get_metric("poisson-nloglik").mode == "min"
    assert get_metric("test_score").mode == "max" and get_metric("valid_logloss").mode == "min"
    with pytest.raises(ValueError, match="library"):
        get_metric("ndcg@5").score(np.zeros(2), np.zeros(2))


def test_scores_weight_the_rows():
    y = np.array([0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    w = np.array([1.0, 1.0, 2.0])
    expected = -(np.log(0.9) + np.log(0.8) + 2 * np.log(0.4)) / 4
    assert get_metric("logloss").score(y, proba, w) == pytest.approx(expected)
    assert get_metric("accuracy").score(y, proba, w) == pytest.approx(0.5)
    assert get_metric("rmse").score(np.array([1.0, 3.0]), np.array([2.0, 3.0]), np.array([3.0, 1.0])) == (
        pytest.approx(np.sqrt(0.75))
    )


def test_multiclass_auc_is_one_vs_rest_macro():
    y = np.array([0, 1, 2, 0, 1, 2])
    perfect = np.eye(3)[y] * 0.8 + 0.1 / 1.5
    assert get_metric("auc").score(y, perfect) == pytest.approx(1.0)


def test_each_task_has_a_default_metric():
    assert [default_metric(t).name for t in ("binary", "multiclass", "regression")] == [
        "logloss",
        "mlogloss",
        "rmse",
    ]
