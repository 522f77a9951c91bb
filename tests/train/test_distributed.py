"""Data-parallel runs: two workers agree with one."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _prefetch(trained):
    families = ["xgboost", "lightgbm"]
    trained.prefetch([(f, "binary", kw) for f in families for kw in ({}, {"num_workers": 2})])


@pytest.mark.parametrize("family", ["xgboost", "lightgbm"])
def test_two_workers_agree_with_one_within_tolerance(trained, holdout, family):
    one = trained(family, "binary")
    two = trained(family, "binary", num_workers=2)
    assert two.num_workers == 2 and one.num_workers == 1
    df = holdout("binary")
    p1, p2 = one.predictor().predict_proba(df)[:, 1], two.predictor().predict_proba(df)[:, 1]
    assert np.mean(np.abs(p1 - p2)) < 0.05
    assert np.mean((p1 > 0.5) == (p2 > 0.5)) > 0.95
    assert abs(one.best_score - two.best_score) < 0.03
    assert two.ingest["rows"] < one.ingest["rows"]  # each worker trained on its shard
