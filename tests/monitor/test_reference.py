"""The prediction reference: one number per prediction by task, a bounded sorted sample, a file that
names itself when it is not a reference."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.train.reference import MAX_VALUES, load_reference, reference, save_reference, summarize


class Scores:
    def __init__(self, scores):
        self.scores = scores

    def predict_scores(self, rows):
        return self.scores


def test_one_number_per_prediction_by_task():
    np.testing.assert_allclose(summarize([[0.8, 0.2], [0.3, 0.7]]), [0.2, 0.7])  # binary: P(positive)
    np.testing.assert_allclose(summarize([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]]), [0.6, 0.5])  # top class
    np.testing.assert_allclose(summarize([3.5, -1.0]), [3.5, -1.0])  # regression: the value


def test_a_large_validation_set_is_sampled_and_the_file_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    p = rng.uniform(size=10_000)
    data = reference(Scores(np.column_stack([1 - p, p])), rows=None)
    assert data["rows"] == MAX_VALUES and data["values"] == sorted(data["values"])
    assert abs(np.median(data["values"]) - 0.5) < 0.05  # a sample of the whole, not one end
    values = load_reference(save_reference(data, tmp_path))
    assert values == data["values"]


def test_a_file_that_is_not_a_reference_is_named(tmp_path):
    bad = tmp_path / "prediction_reference.json"
    bad.write_text(json.dumps({"rows": 3}))
    with pytest.raises(ValueError, match="prediction_reference.json: not a prediction reference"):
        load_reference(bad)
