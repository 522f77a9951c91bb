"""Drift statistics: quiet on same-distribution windows (false alarms under the configured level over
repeated draws), loud on shifted numbers, categories and predictions."""

from __future__ import annotations

import numpy as np
import pytest

from app.data.stats import QUANTILES, ColumnProfile, DatasetProfile
from app.monitor.drift import DriftDetector, NumericReference, numeric_drift, psi

LEVELS = ["paris", "lyon", "nice", "lille", "brest"]
P_LEVELS = [0.4, 0.3, 0.15, 0.1, 0.05]


def reference_profile(rng) -> DatasetProfile:
    x = rng.normal(size=50_000)
    quantiles = {str(q): float(v) for q, v in zip(QUANTILES, np.quantile(x, QUANTILES), strict=True)}
    counts = rng.multinomial(50_000, P_LEVELS)
    return DatasetProfile(
        num_rows=50_000,
        columns={
            "amount": ColumnProfile(
                "amount", "numeric", "double", 50_000, 0,
                quantiles=quantiles,
            ),
            "city": ColumnProfile(
                "city", "categorical", "string", 50_000, 0,
                top_k=sorted(zip(LEVELS, counts.tolist(), strict=True), key=lambda kv: -kv[1])[:4],
            ),
        },
    )  # fmt: skip


def window(rng, n, *, shift=0.0, scale=1.0, levels=P_LEVELS):
    return {
        "amount": (rng.normal(size=n) * scale + shift).tolist(),
        "city": rng.choice(LEVELS, size=n, p=levels).tolist(),
    }


def detector(rng, **kw) -> DriftDetector:
    d = DriftDetector(window_size=2_000, min_window=500, **kw)
    d.set_reference_profile(reference_profile(rng), ["amount", "city"])
    d.set_reference_distribution(rng.beta(2, 5, size=20_000))
    return d


def test_same_distribution_raises_no_alarm_over_repeated_draws():
    rng = np.random.default_rng(0)
    alarms = 0
    for _ in range(50):
        d = detector(rng)
        d.add_rows(window(rng, 2_000))
        d.add_predictions(rng.beta(2, 5, size=2_000))
        alarms += any(f.drifted for f in d.detect_feature_drift()) or d.detect_prediction_drift()[0]
    assert alarms / 50 <= 0.02  # the configured thresholds are far above same-distribution noise


@pytest.mark.parametrize(("shift", "scale"), [(0.5, 1.0), (0.0, 2.0)], ids=["mean", "spread"])
def test_a_shifted_numeric_feature_is_flagged(shift, scale):
    rng = np.random.default_rng(1)
    d = detector(rng)
    d.add_rows(window(rng, 2_000, shift=shift, scale=scale))
    drift = {f.feature: f for f in d.detect_feature_drift()}
    assert drift["amount"].drifted and not drift["city"].drifted
    assert drift["amount"].ks > 0.1


def test_a_shifted_categorical_feature_is_flagged_including_levels_beyond_the_top_k():
    rng = np.random.default_rng(2)
    d = detector(rng)
    d.add_rows(window(rng, 2_000, levels=[0.1, 0.1, 0.1, 0.1, 0.6]))  # brest is outside the top 4
    drift = {f.feature: f for f in d.detect_feature_drift()}
    assert drift["city"].drifted and drift["city"].psi > 0.5 and not drift["amount"].drifted


def test_shifted_predictions_are_flagged_and_a_small_window_never_is():
    rng = np.random.default_rng(3)
    d = detector(rng)
    d.add_predictions(rng.beta(5, 2, size=400))
    assert d.detect_prediction_drift() == (False, 0.0)  # under min_window
    d.add_predictions(rng.beta(5, 2, size=1_000))
    drifted, score = d.detect_prediction_drift()
    assert drifted and score > 1.0


def test_guide_surface_add_prediction_one_at_a_time():
    rng = np.random.default_rng(4)
    d = DriftDetector(window_size=1_000, min_window=100)
    d.set_reference_distribution(rng.normal(size=5_000))
    for p in rng.normal(size=1_000):
        d.add_prediction(p)
    assert d.detect_prediction_drift()[0] is False


def test_psi_and_ks_basics_and_discrete_quantiles():
    assert psi(np.array([0.5, 0.5]), np.array([50, 50])) == pytest.approx(0.0)
    ref = NumericReference.from_quantiles({"0.0": 0, "0.1": 0, "0.5": 1, "0.9": 1, "1.0": 3})
    assert len(ref.shares) == len(ref.edges) + 1 and ref.shares.sum() == pytest.approx(1.0)
    same, ks = numeric_drift(NumericReference.from_sample(np.arange(1000)), np.arange(1000))
    assert same < 0.01 and ks < 0.05
