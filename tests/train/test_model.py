"""Saved models: native files, JSON metadata, and a ``load_model`` that predicts exactly as trained."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from app.train import load_model, save_model
from app.train.integrity import ModelFileError

pytestmark = pytest.mark.slow

NATIVE = {"xgboost": "model.ubj", "lightgbm": "model.txt", "catboost": "model.cbm"}


@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory):
    """``saved(family, task)``: the trained run written with ``save_model``."""
    out = {}

    def get(family, task):
        if (family, task) not in out:
            out[family, task] = save_model(trained(family, task), tmp_path_factory.mktemp(f"{family}-{task}"))
        return out[family, task]

    return get


@pytest.mark.parametrize("family", ["xgboost", "lightgbm", "catboost"])
def test_the_directory_holds_the_native_model_preprocessor_and_metadata(saved, family):
    model_dir = saved(family, "binary")
    assert sorted(p.name for p in model_dir.iterdir()) == sorted(
        [NATIVE[family], "preprocessor.json", "metadata.json"]
    )
    meta = json.loads((model_dir / "metadata.json").read_text())
    assert meta["family"] == family and meta["task"] == "binary"
    assert meta["features"][:2] == ["x0", "x1"] and meta["classes"] == [0, 1]
    assert set(meta["metrics"]) == {"logloss", "auc"}
    assert {"ray", "numpy", "pyarrow", family} <= set(meta["versions"])


@pytest.mark.parametrize("family", ["xgboost", "lightgbm", "catboost"])
@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_a_loaded_model_predicts_identically_on_pandas_numpy_and_arrow(saved, trained, holdout, family, task):
    df = holdout(task).drop(columns=["y"])
    expected = trained(family, task).predictor().predict_proba(df)
    loaded = load_model(saved(family, task))
    features = loaded.features
    inputs = {
        "pandas": df,
        "arrow": pa.Table.from_pandas(df, preserve_index=False),
        "numpy": df[features].to_numpy(dtype=object),
    }
    for name, data in inputs.items():
        np.testing.assert_array_equal(loaded.predict_proba(data), expected, err_msg=name)
    np.testing.assert_array_equal(loaded.predict(df), trained(family, task).predictor().predict(df))


def test_a_loaded_regressor_predicts_identically(trained, holdout, tmp_path):
    result = trained("lightgbm", "regression", weighted=True)
    df = holdout("regression", weighted=True)
    loaded = load_model(save_model(result, tmp_path / "m"))
    np.testing.assert_array_equal(loaded.predict(df), result.predictor().predict(df))


def test_a_numpy_input_with_the_wrong_width_names_the_features(saved):
    loaded = load_model(saved("xgboost", "binary"))
    with pytest.raises(ValueError, match="x0"):
        loaded.predict(np.zeros((3, 2)))


def test_loading_a_directory_without_metadata_is_explained(tmp_path):
    with pytest.raises(ModelFileError, match="metadata.json: missing"):
        load_model(tmp_path)
