"""Refit: the chosen model (or each ensemble member) trained again on train + valid with its trial's
best round count; validation scores stay those of the search."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from typer.testing import CliRunner

from app.data import DatasetSpec, prepare
from app.data.synthetic import make_frame, write_parquet
from app.search import AutoMLEngine, RayTuneOptimizer, RayTuneSettings
from app.search.inprocess import TrialData
from app.search.refit import refit_model
from app.train import load_model
from app.train.ensemble import ENSEMBLE_FILE, save_ensemble
from app.train.metrics import get_metric


@pytest.fixture(scope="module")
def refit_fit(ray_session, tmp_path_factory):
    """A small XGBoost search whose best single model is refit (the default) with its trial's round count
    (no cross-validation: that refits with the folds' round count, see test_cv.py)."""
    out = tmp_path_factory.mktemp("refit")
    frame = make_frame(2_000, task="binary", seed=11)
    settings = RayTuneSettings(
        num_samples=3,
        families=["xgboost"],
        scheduler="fifo",
        search_algorithm="random",
        max_rounds=60,
        report_every=5,
        early_stopping_rounds=10,
        ensemble_size=1,
        cv_folds=0,
    )
    result = AutoMLEngine(RayTuneOptimizer(settings), out_dir=out, track=False).fit(frame, target="y")
    prepared = prepare(DatasetSpec(uri=str(out / "data"), target="y"))
    return result, prepared


def _meta(model_dir: Path) -> dict:
    return json.loads((model_dir / "metadata.json").read_text())


def test_refit_model_has_the_trials_best_round_count_and_train_plus_valid_rows(refit_fit):
    result, prepared = refit_fit
    n_train, n_valid = prepared.splits.train.count(), prepared.splits.valid.count()
    trial, refit = _meta(result.validated_model_dir), _meta(result.model_dir)
    booster = xgb.Booster(model_file=str(result.model_dir / "model.ubj"))
    assert result.refit["done"] is True
    assert booster.num_boosted_rounds() == trial["best_iteration"] + 1 == refit["refit"]["rounds"]
    assert trial["ingest"]["rows"] == n_train
    assert refit["refit"]["rows"] == n_train + n_valid
    # The validation figures are the trial's: the refit model has seen the validation rows.
    assert refit["best_score"] == trial["best_score"] == pytest.approx(result.best_score)


def test_refit_model_has_learned_the_validation_rows_and_still_predicts(refit_fit):
    result, prepared = refit_fit
    valid = prepared.splits.valid.to_pandas()
    y = valid["y"].to_numpy()
    before = load_model(result.validated_model_dir).predict_proba(valid)
    after = result.model.predict_proba(valid)
    assert get_metric("logloss").score(y, after) < get_metric("logloss").score(y, before)
    fresh = make_frame(1_000, task="binary", seed=12)
    proba = result.model.predict_proba(fresh)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert (result.model.predict(fresh) == fresh.y).mean() > 0.8


def test_the_prediction_reference_is_the_validated_models_on_validation_rows(refit_fit):
    """Prediction drift is measured against what the model did on rows it had not trained on: the
    validated model's, not the refit one's (which trained on the validation rows)."""
    from app.train.reference import REFERENCE_FILE, load_reference, summarize

    result, prepared = refit_fit
    values = load_reference(result.out_dir / REFERENCE_FILE)
    valid = prepared.splits.valid.to_pandas()
    validated = np.sort(summarize(load_model(result.validated_model_dir).predict_scores(valid)))
    assert len(values) == min(len(valid), 2000)
    if len(values) == len(valid):
        np.testing.assert_allclose(values, validated, atol=1e-5)


def test_leaderboard_and_fit_file_record_the_refit(refit_fit):
    result, _ = refit_fit
    board = result.leaderboard
    assert board.loc[board.refit, "trial_id"].tolist() == [_meta(result.model_dir)["refit"]["trial_id"]]
    assert set(board.trainer) == {"in_process"}
    saved = json.loads((result.out_dir / "fit.json").read_text())
    assert saved["result"]["refit"]["done"] is True
    assert saved["settings"]["refit"] is True


def test_ensemble_members_are_refit_and_keep_their_weights(refit_fit, tmp_path):
    result, prepared = refit_fit
    board = result.leaderboard.set_index("trial_id")
    pointers = sorted((result.out_dir / "tune" / "search").glob("*/best/best.json"))[:2]
    members, checkpoints = [], []
    for pointer in pointers:
        trial_id = json.loads(pointer.read_text())["trial_id"]
        ckpt = pointer.parent / json.loads(pointer.read_text())["version"]
        checkpoints.append(ckpt)
        members.append(tmp_path / "ens" / "members" / trial_id)
        shutil.copytree(ckpt, members[-1])
    save_ensemble(members, np.array([0.7, 0.3]), tmp_path / "ens", info={"metric": "logloss"})
    data = TrialData.from_datasets(prepared.splits.train, prepared.splits.valid, prepared.preprocessor)
    records = refit_model(
        tmp_path / "ens",
        data=data,
        params={d.name: json.loads(board.loc[d.name, "params"]) for d in members},
        metric="logloss",
        threads=1,
        storage_path=tmp_path / "refit",
    )
    info = json.loads((tmp_path / "ens" / ENSEMBLE_FILE).read_text())
    assert [m["weight"] for m in info["members"]] == [0.7, 0.3]
    assert info["refit"] is True
    assert [r["trial_id"] for r in records] == [d.name for d in members]
    for d, checkpoint in zip(members, checkpoints, strict=True):
        rounds = _meta(checkpoint)["best_iteration"] + 1
        assert xgb.Booster(model_file=str(d / "model.ubj")).num_boosted_rounds() == rounds
        assert _meta(d)["refit"]["rows"] == len(data.y_train) + len(data.y_valid)
    assert load_model(tmp_path / "ens").predict_proba(make_frame(50, seed=3)).shape == (50, 2)


def test_no_refit_flag_keeps_the_searched_model(ray_session, tmp_path):
    from app.cli import app

    write_parquet(make_frame(1_500, task="binary", seed=13), tmp_path / "data", files=1)
    args = ["fit", str(tmp_path / "data"), "--target", "y", "--out", str(tmp_path / "run"), "--no-refit"]
    args += ["--num-samples", "2", "--families", "lightgbm", "--max-rounds", "30", "--scheduler", "fifo"]
    outcome = CliRunner().invoke(app, args)
    assert outcome.exit_code == 0, outcome.output
    assert "not refit (refit=False)" in outcome.output
    run = tmp_path / "run"
    assert "refit" not in _meta(run / "model")
    assert not (run / "validated_model").exists()
    saved = json.loads((run / "fit.json").read_text())
    assert saved["result"]["refit"] == {"done": False, "reason": "refit=False"}
