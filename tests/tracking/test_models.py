"""Models logged with their flavour and as the pyfunc pipeline; ``models:/NAME@champion`` parity."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from app.train.load import load_model


@pytest.mark.parametrize("family_dir", ["xgb_dir", "lgb_dir"])
def test_champion_pyfunc_predicts_exactly_like_the_saved_model(
    family_dir, request, tracker, holdout, unique_name, monkeypatch
):
    import mlflow.pyfunc

    model_dir = request.getfixturevalue(family_dir)
    tracker.start_run("automl")
    logged = tracker.log_model(model_dir, registered_model_name=unique_name, input_example=holdout.head(5))
    tracker.end_run()
    assert logged.registered_version == "1"

    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracker.tracking_uri)  # how users load it
    champion = mlflow.pyfunc.load_model(f"models:/{unique_name}@champion")
    features = holdout.drop(columns=["y"])
    saved = load_model(model_dir)
    np.testing.assert_array_equal(champion.predict(features), saved.predict(features))
    np.testing.assert_allclose(
        champion.predict(features, params={"method": "predict_proba"}),
        saved.predict_proba(features),
        rtol=1e-6,
    )


def test_native_flavour_loads_the_booster_with_signature_and_example(tracker, xgb_dir, holdout, monkeypatch):
    import mlflow.models
    import mlflow.xgboost

    from app.tracking.flavors import encoded_frame

    run_id = tracker.start_run("automl")
    logged = tracker.log_model(xgb_dir, input_example=holdout.head(3))
    tracker.end_run()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracker.tracking_uri)

    (native,) = logged.native
    assert (native.name, native.flavor) == ("model-xgboost", "xgboost")
    booster = mlflow.xgboost.load_model(native.uri)
    saved = load_model(xgb_dir)
    encoded = encoded_frame(saved, holdout.drop(columns=["y"]))
    np.testing.assert_allclose(
        booster.inplace_predict(encoded.to_numpy()), saved.predict_proba(holdout)[:, 1]
    )
    for uri in (native.uri, logged.model_uri):
        info = mlflow.models.get_model_info(uri)
        assert info.signature is not None and info.saved_input_example_info is not None
        assert info.run_id == run_id
    pipeline_inputs = mlflow.models.get_model_info(logged.model_uri).signature.inputs.input_names()
    assert pipeline_inputs == [c for c in holdout.columns if c != "y"]
    importance = tracker.client.download_artifacts(run_id, "model/feature_importance.json")
    assert (
        json.loads(Path(importance).read_text())["xgboost"]
        == json.loads((xgb_dir / "metadata.json").read_text())["feature_importance"]
    )


@pytest.fixture
def ensemble_dir(tmp_path, xgb_dir, lgb_dir) -> Path:
    """The search stage's ensemble layout: member directories and ``ensemble.json`` with weights."""
    from app.train.ensemble import save_ensemble

    out = tmp_path / "ensemble"
    members = [shutil.copytree(d, out / f"member_{i}") for i, d in enumerate((xgb_dir, lgb_dir))]
    return save_ensemble(members, np.array([0.75, 0.25]), out, info={"metric": "logloss", "task": "binary"})


def test_an_ensemble_is_one_pyfunc_averaging_its_members(tracker, ensemble_dir, holdout, unique_name):
    from app.tracking.registry import load_pyfunc

    tracker.start_run("automl")
    logged = tracker.log_model(ensemble_dir, registered_model_name=unique_name, input_example=holdout)
    tracker.end_run()
    assert [m.name for m in logged.native] == ["model-member0-xgboost", "model-member1-lightgbm"]

    pyfunc = load_pyfunc(f"models:/{unique_name}@champion", tracking_uri=tracker.tracking_uri)
    saved = load_model(ensemble_dir)
    features = holdout.drop(columns=["y"])
    np.testing.assert_allclose(
        pyfunc.predict(features, params={"method": "predict_proba"}), saved.predict_proba(features), rtol=1e-6
    )
    np.testing.assert_array_equal(pyfunc.predict(features), saved.predict(features))

    registered = load_model(f"models:/{unique_name}@champion", tracking_uri=tracker.tracking_uri)
    assert registered.family == "ensemble" and registered.weights == pytest.approx([0.75, 0.25])
    np.testing.assert_allclose(registered.predict_proba(features), saved.predict_proba(features), rtol=1e-6)


def test_load_model_reads_a_registered_version_by_alias_or_number_from_native_files(
    tracker, xgb_dir, holdout, unique_name
):
    tracker.start_run("automl")
    tracker.log_model(xgb_dir, registered_model_name=unique_name, input_example=holdout.head(5))
    tracker.end_run()
    saved = load_model(xgb_dir)
    for uri in (f"models:/{unique_name}@champion", f"models:/{unique_name}/1"):
        model = load_model(uri, tracking_uri=tracker.tracking_uri)
        assert (model.family, model.metadata["registered_name"]) == ("xgboost", unique_name)
        assert model.metadata["registered_version"] == "1" and model.metadata["source"] == uri
        np.testing.assert_allclose(model.predict_proba(holdout), saved.predict_proba(holdout))
    with pytest.raises(LookupError, match="no version with alias 'nope'"):
        load_model(f"models:/{unique_name}@nope", tracking_uri=tracker.tracking_uri)


def test_a_list_of_models_is_an_ensemble_with_the_given_or_equal_weights(tmp_path, xgb_dir, lgb_dir):
    from app.tracking.flavors import expand_models

    assert expand_models([xgb_dir, lgb_dir], tmp_path) == ([xgb_dir, lgb_dir], None)
    assert expand_models(xgb_dir, tmp_path) == ([xgb_dir], None)
