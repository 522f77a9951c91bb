"""The learner registry: a new family is one module plus one ``register`` line, and the search's space,
in-process training, saving, loading, prediction and the report's SHAP all reach it by name."""

from __future__ import annotations

import numpy as np
import pytest

from app import learners as families
from app.data.encode import LABEL
from app.data.synthetic import make_frame
from app.search.inprocess import TrialData, train_local
from app.search.settings import RayTuneSettings
from app.search.spaces import OptunaSpace, initial_points, split_config
from app.tracking.report import shap_importance
from app.train import load_model, save_model
from app.train.matrix import feature_matrix

from ..tracking.conftest import preprocessor


@pytest.fixture
def prior_learner():
    families.register("prior", "tests.train.fake_learner")
    yield "prior"
    families.unregister("prior")


def _data(task: str = "binary"):
    frame = make_frame(400, task=task, seed=1)
    pre = preprocessor(frame, task)
    cols = pre.transform(frame)
    x, y = feature_matrix(cols, pre.columns), cols[LABEL]
    return frame, TrialData(x[:300], y[:300], None, x[300:], y[300:], None, pre.to_dict())


def test_a_registered_learner_is_searched_trained_saved_loaded_and_explained(prior_learner, tmp_path):
    frame, data = _data()
    settings = RayTuneSettings(families=[prior_learner, "xgboost"])
    (point,) = [p for p in initial_points(settings.families, 300, 10, "binary") if p["family"] == "prior"]
    family, params = split_config(point)
    assert OptunaSpace(settings.families, 300, 10, "binary").spaces["prior"][0].name == "smoothing"

    result = train_local(family, params, data, num_boost_round=20, early_stopping_rounds=5)
    model = load_model(save_model(result, tmp_path / "prior"))

    assert result.family == "prior" and result.num_rounds == 6 and np.isfinite(result.best_score)
    proba = model.predict_proba(frame.drop(columns=["y"]).head(7))
    assert proba.shape == (7, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert set(shap_importance(model, frame.head(20))) == set(model.preprocessor.columns)


def test_an_unregistered_family_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown model family 'prior'"):
        families.learner("prior")
    with pytest.raises(ValueError, match="families"):
        RayTuneSettings(families=["prior"])
