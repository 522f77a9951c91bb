"""Every family learns every task: clearly better than a trivial baseline on fresh rows."""

from __future__ import annotations

import numpy as np
import pytest

from tests.train.conftest import ROUNDS

pytestmark = pytest.mark.slow

FAMILIES = ["xgboost", "lightgbm", "catboost"]
# Regression runs carry sample weights, so each family also trains a weighted case.
CASES = [(f, t, t == "regression") for f in FAMILIES for t in ("binary", "multiclass", "regression")]
IDS = [f"{f}-{t}{'-weighted' if w else ''}" for f, t, w in CASES]


@pytest.fixture(scope="module", autouse=True)
def _prefetch(trained):
    trained.prefetch([(f, t, {"weighted": w}) for f, t, w in CASES])


def _logloss(proba: np.ndarray, codes: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(proba[np.arange(len(codes)), codes], 1e-12, None))))


def _codes(labels, classes) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[v] for v in labels])


@pytest.mark.parametrize(("family", "task", "weighted"), CASES, ids=IDS)
def test_beats_the_trivial_baseline_by_a_clear_margin(trained, holdout, family, task, weighted):
    result = trained(family, task, weighted=weighted)
    df = holdout(task, weighted=weighted)
    predictor = result.predictor()
    if task == "regression":
        rmse = float(np.sqrt(np.mean((predictor.predict(df) - df["y"].to_numpy()) ** 2)))
        assert rmse < 0.5 * float(df["y"].std())
        return
    classes = predictor.classes
    codes = _codes(df["y"], classes)
    prior = np.bincount(codes, minlength=len(classes)) / len(codes)
    baseline = _logloss(np.tile(prior, (len(codes), 1)), codes)
    assert _logloss(predictor.predict_proba(df), codes) < 0.6 * baseline
    accuracy = float(np.mean(predictor.predict(df) == df["y"].to_numpy()))
    assert accuracy > prior.max() + 0.2


@pytest.mark.parametrize(("family", "task", "weighted"), CASES, ids=IDS)
def test_history_best_iteration_and_importance_are_consistent(trained, family, task, weighted):
    result = trained(family, task, weighted=weighted)
    assert result.metric_name == {"binary": "logloss", "multiclass": "mlogloss", "regression": "rmse"}[task]
    lengths = {len(v) for v in result.history.values()}
    assert lengths == {result.num_rounds} and 1 <= result.num_rounds <= ROUNDS
    assert 0 <= result.best_iteration < result.num_rounds
    assert result.best_score == pytest.approx(result.history[result.metric_name][result.best_iteration])
    assert result.best_score == pytest.approx(min(result.history[result.metric_name]))
    assert max(result.feature_importance, key=result.feature_importance.get) in {"x0", "x1"}
    assert sum(result.feature_importance.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("family", FAMILIES)
def test_secondary_metrics_are_reported_in_their_own_direction(trained, family):
    binary, multi = trained(family, "binary"), trained(family, "multiclass")
    assert binary.history["auc"][binary.best_iteration] > 0.9
    assert 0.5 < multi.history["accuracy"][multi.best_iteration] <= 1.0


@pytest.mark.parametrize("family", ["xgboost", "lightgbm", "catboost"])
def test_predict_proba_has_a_column_per_class_and_rows_sum_to_one(trained, holdout, family):
    predictor = trained(family, "multiclass").predictor()
    proba = predictor.predict_proba(holdout("multiclass"))
    assert proba.shape == (1000, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert set(predictor.predict(holdout("multiclass"))) <= {"low", "mid", "high", "top"}


def test_predict_proba_on_a_regressor_is_refused(trained, holdout):
    with pytest.raises(ValueError, match="regressor"):
        trained("xgboost", "regression", weighted=True).predictor().predict_proba(holdout("regression"))


def test_library_threads_follow_the_worker_cpu_share(trained):
    assert trained("xgboost", "binary").params["nthread"] == 1
    assert trained("lightgbm", "binary").params["num_threads"] == 1
    assert trained("catboost", "binary").params["thread_count"] == 1
