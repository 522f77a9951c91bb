"""Cross-validation after the search, on small data: the model and the ensemble weights are chosen on
out-of-fold predictions over train + valid, refit with the folds' round count, within the time budget."""

import json
import time

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from pydantic import ValidationError

from app.data.encode import Preprocessor
from app.data.synthetic import make_frame
from app.search import AutoMLEngine, RayTuneOptimizer, RayTuneSettings, cv
from app.search.cv import Candidate
from app.search.inprocess import TrialData, predict_encoded
from app.search.raytrain import StreamingData
from app.train import load_model
from app.train.ensemble import read_ensemble
from app.train.metrics import get_metric
from app.train.predict import predict_to_parquet


def _data(n: int, *, classes: int = 3, seed: int = 0) -> TrialData:
    """``n`` rows of three numeric features, 80 % training and 20 % validation; ``x0`` sets the class."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = np.digitize(x[:, 0] + rng.normal(scale=0.5, size=n), np.linspace(-1, 1, classes - 1))
    pre = Preprocessor(
        features=["x0", "x1", "x2"],
        categories={},
        datetime=[],
        target="y",
        task="multiclass" if classes > 2 else "binary",
        classes=list(range(classes)),
    )
    cut = int(0.8 * n)
    y = y.astype(np.float32)
    return TrialData(x[:cut], y[:cut], None, x[cut:], y[cut:], None, pre.to_dict())


def _cross_validate(cands: list[Candidate], data: TrialData, **kw) -> cv.CVRun:
    args = {
        "folds": 4,
        "task": "multiclass",
        "metric": "mlogloss",
        "maximize": False,
        "max_rounds": 40,
        "early_stopping_rounds": 10,
        "trial_rows": int(0.8 * len(data.y_train)),
    }
    return cv.cross_validate(cands, data, **{**args, **kw})


# --- settings and folds ----------------------------------------------------------------------------


def test_one_fold_is_rejected_with_a_clear_message():
    with pytest.raises(ValidationError, match="cv_folds=1 is no cross-validation"):
        RayTuneSettings(cv_folds=1)
    with pytest.raises(ValidationError, match="needs refit=True"):
        RayTuneSettings(cv_folds=5, refit=False)
    assert RayTuneSettings(cv_folds=2).cv_folds == 2


def test_auto_folds_switch_off_above_the_row_threshold():
    auto = RayTuneSettings()
    at_threshold, over = _data(cv.AUTO_MAX_ROWS), _data(cv.AUTO_MAX_ROWS + 1)
    assert cv.folds_for(auto, at_threshold) == (5, None)
    folds, reason = cv.folds_for(auto, over)
    assert folds == 0 and "10,001 train + valid rows" in reason
    assert cv.folds_for(RayTuneSettings(cv_folds=3), over) == (3, None)
    assert cv.folds_for(RayTuneSettings(cv_folds=0), at_threshold) == (0, "cv_folds=0")
    assert cv.folds_for(RayTuneSettings(refit=False), at_threshold) == (0, "auto: refit=False")


def test_ray_train_trials_are_never_cross_validated():
    streaming = StreamingData(
        train=None,
        valid=None,
        preprocessor={},
        n_train=80,
        n_valid=20,
        n_features=3,
        worker_cpus=1.0,
        threads=1,
    )
    folds, reason = cv.folds_for(RayTuneSettings(cv_folds=5), streaming)
    assert folds == 0 and "Ray Train" in reason


def test_stratified_folds_keep_every_class_in_every_fold():
    y = np.array([0] * 80 + [1] * 15 + [2] * 5)
    splits = cv.fold_indices(y, 5, classification=True, seed=0)
    assert len(splits) == 5
    assert sorted(np.concatenate([held for _, held in splits]).tolist()) == list(range(len(y)))
    for train_rows, held in splits:
        assert set(y[train_rows]) == set(y[held]) == {0, 1, 2}
    # A class of 3 rows can be in at most 3 folds.
    assert len(cv.fold_indices(np.array([0] * 50 + [1] * 3), 5, classification=True, seed=0)) == 3


def test_candidates_are_distinct_finished_trials_with_each_familys_best():
    board = pd.DataFrame(
        {
            "trial_id": ["a", "b", "c", "d", "e", "f"],
            "family": ["lightgbm", "lightgbm", "lightgbm", "lightgbm", "catboost", "xgboost"],
            "params": ['{"n": 1}', '{"n": 1}', '{"n": 2}', '{"n": 3}', "{}", "{}"],
            "train_time_s": [0.1] * 6,
            "checkpoint": ["ck"] * 5 + [None],
        }
    )
    # b repeats a's configuration, f never finished; e (catboost's best) displaces d.
    assert [c.trial_id for c in cv.candidates(board, top_k=3)] == ["a", "c", "e"]


# --- cross-validation on Ray -----------------------------------------------------------------------


def test_out_of_fold_predictions_cover_every_row_once_from_models_that_never_saw_it(ray_session):
    data = _data(400).with_valid_in_train()
    cands = [Candidate("a", "xgboost", {}, 0.05), Candidate("b", "lightgbm", {"num_leaves": 4}, 0.05)]
    run = _cross_validate(cands, data)
    assert run.reason is None and run.folds == 4
    assert {s.trial_id for s in run.scored} == {"a", "b"}
    assert run.scored[0].score <= run.scored[1].score  # best first
    for s in run.scored:
        assert s.oof.shape == (400, 3) and not np.isnan(s.oof).any()
        assert s.score == pytest.approx(get_metric("mlogloss").score(data.y_train, s.oof))
        assert len(s.best_iterations) == 4 and s.rounds == round(np.mean(s.best_iterations) + 1)
    # Fold 2's rows hold the predictions of a model trained on the other three folds.
    train_rows, held = cv.fold_indices(data.y_train, 4, classification=True, seed=0)[2]
    pred, _, model = cv.fit_fold(
        data, "xgboost", {}, train_rows, held, metric="mlogloss", max_rounds=40, early_stopping_rounds=10
    )
    oof = next(s.oof for s in run.scored if s.trial_id == "a")
    np.testing.assert_allclose(oof[held], pred, rtol=1e-6)
    assert model is None and all(s.models == [] for s in run.scored)  # kept only for bagging


def test_a_bags_out_of_fold_predictions_come_from_its_own_fold_models_which_never_saw_them(ray_session):
    data = _data(400).with_valid_in_train()
    run = _cross_validate([Candidate("a", "lightgbm", {"num_leaves": 4}, 0.05)], data, keep_models=True)
    (scored,) = run.scored
    splits = cv.fold_indices(data.y_train, 4, classification=True, seed=0)
    assert len(scored.models) == len(splits) == 4
    covered = np.zeros(400, dtype=int)
    for (train_rows, held), result in zip(splits, scored.models, strict=True):
        assert not set(train_rows) & set(held) and result.ingest["rows"] == len(train_rows)
        pred = predict_encoded("lightgbm", result.model, result.preprocessor, data.x_train[held])
        np.testing.assert_allclose(scored.oof[held], pred, rtol=1e-6)
        covered[held] += 1
    assert (covered == 1).all()  # every row predicted once, by the one model that held it out


def test_a_short_deadline_skips_slow_candidates_but_keeps_the_best(ray_session):
    data = _data(300).with_valid_in_train()
    cands = [
        Candidate("best", "lightgbm", {}, 0.05),
        Candidate("slow", "xgboost", {}, 1_000.0),  # ~1,000 s a fold by its trial's time
        Candidate("quick", "xgboost", {}, 0.05),
    ]
    run = _cross_validate(cands, data, deadline=time.monotonic() + 60)
    assert {s.trial_id for s in run.scored} == {"best", "quick"}
    assert [s["trial_id"] for s in run.skipped] == ["slow"]
    assert run.skipped[0]["reason"].startswith("time budget")


def test_no_time_for_the_best_trial_skips_cross_validation(ray_session):
    run = _cross_validate([Candidate("best", "xgboost", {}, 30.0)], _data(300), deadline=time.monotonic() + 5)
    assert run.scored == [] and "for the best trial" in run.reason
    assert run.record()["done"] is False


def test_folds_running_at_the_deadline_are_cancelled(ray_session):
    # The trial's time says a second, but each fold boosts 20,000 rounds: the deadline stops them.
    cands = [Candidate("best", "catboost", {}, 0.0)]
    started = time.monotonic()
    run = _cross_validate(
        cands,
        _data(2_000),
        max_rounds=20_000,
        early_stopping_rounds=20_000,
        deadline=started + cv.WORKER_START_S + 2,
    )
    assert time.monotonic() - started < cv.WORKER_START_S + 6
    assert run.scored == [] and "unfinished at the deadline" in run.reason


# --- the engine ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cv_fit(ray_session, tmp_path_factory):
    """A search over the three families on 800 rows: auto mode cross-validates (5 folds)."""
    frame = make_frame(800, task="binary", seed=21)
    settings = RayTuneSettings(
        num_samples=6,
        scheduler="fifo",
        search_algorithm="random",
        max_rounds=60,
        report_every=5,
        early_stopping_rounds=10,
        ensemble_size=5,
        bagging=False,  # the refit after cross-validation; bagged_fit below bags
    )
    out = tmp_path_factory.mktemp("cv")
    return AutoMLEngine(RayTuneOptimizer(settings), out_dir=out, track=False).fit(frame, target="y")


def test_the_model_and_ensemble_are_chosen_on_out_of_fold_scores(cv_fit):
    result = cv_fit
    assert result.cv["done"] is True and result.cv["folds"] == 5
    assert result.cv["rows"] == 800  # train + valid (the default split keeps no test rows)
    scores = {c["trial_id"]: c["cv_score"] for c in result.cv["candidates"]}
    assert len(scores) == 6
    assert result.best_trial == min(scores, key=scores.get)
    assert result.best_score == pytest.approx(scores[result.best_trial])
    assert result.ensemble_score <= result.best_score
    assert set(result.ensemble_weights) <= set(scores)
    board = result.leaderboard.set_index("trial_id")
    assert board["cv_score"].dropna().to_dict() == pytest.approx(scores)


def test_the_chosen_ensemble_is_refit_with_the_folds_round_count_and_predicts(cv_fit):
    result = cv_fit
    assert result.chosen == "ensemble"
    rounds = {c["trial_id"]: c["rounds"] for c in result.cv["candidates"]}
    members = result.refit["members"]
    assert result.refit["done"] is True
    assert {m["trial_id"] for m in members} == set(result.ensemble_weights)
    for m in members:
        assert m["rounds"] == rounds[m["trial_id"]] and m["rows"] == 800
    model = load_model(result.model_dir)
    fresh = make_frame(500, task="binary", seed=22)
    np.testing.assert_allclose(model.predict_proba(fresh).sum(axis=1), 1.0, rtol=1e-5)
    assert (model.predict(fresh) == fresh.y).mean() > 0.8
    assert (result.validated_model_dir / "ensemble.json").exists()


def test_fit_file_and_leaderboard_record_the_cross_validation(cv_fit):
    result = cv_fit
    saved = json.loads((result.out_dir / "fit.json").read_text())
    assert saved["result"]["cv"] == json.loads(json.dumps(result.cv))
    assert saved["result"]["cv"]["seconds"] > 0
    board = pd.read_csv(result.out_dir / "leaderboard.csv")
    assert board["cv_score"].notna().sum() == len(result.cv["candidates"])


@pytest.fixture(scope="module")
def bagged_fit(ray_session, tmp_path_factory):
    """The search of ``cv_fit`` with 4 folds and ``bagging``: the chosen members are their fold models."""
    frame = make_frame(800, task="binary", seed=21)
    settings = RayTuneSettings(
        num_samples=4,
        scheduler="fifo",
        search_algorithm="random",
        max_rounds=60,
        report_every=5,
        early_stopping_rounds=10,
        ensemble_size=5,
        cv_folds=4,
        bagging=True,
    )
    out = tmp_path_factory.mktemp("bagged")
    return AutoMLEngine(RayTuneOptimizer(settings), out_dir=out, track=False).fit(frame, target="y")


def test_a_bagged_model_is_every_chosen_members_fold_models_with_its_weight_shared(bagged_fit, tmp_path):
    result = bagged_fit
    assert result.bagging["done"] is True and result.bagging["folds"] == 4
    assert result.refit == {"done": False, "reason": "bagged"}
    weights = {m["trial_id"]: m["weight"] for m in result.bagging["members"]}
    assert weights == pytest.approx(
        result.ensemble_weights if result.chosen == "ensemble" else {result.best_trial: 1}
    )
    dirs, fold_weights, _ = read_ensemble(result.model_dir)
    assert sorted(d.name for d in dirs) == sorted(f"{t}-fold{k}" for t in weights for k in range(4))
    for d, w in zip(dirs, fold_weights, strict=True):
        assert w == pytest.approx(weights[d.name.rsplit("-fold", 1)[0]] / 4)
        assert json.loads((d / "metadata.json").read_text())["ingest"]["rows"] == 600  # 3 of 4 folds
    fresh = make_frame(300, task="binary", seed=22)
    model = load_model(result.model_dir)
    expected = sum(w * load_model(d).predict_proba(fresh) for d, w in zip(dirs, fold_weights, strict=True))
    np.testing.assert_allclose(model.predict_proba(fresh), expected, rtol=1e-6)
    assert (model.predict(fresh) == fresh.y).mean() > 0.8
    # Batch scoring reads the bag as any model directory.
    fresh.drop(columns=["y"]).to_parquet(tmp_path / "rows.parquet")
    predict_to_parquet(result.model_dir, str(tmp_path / "rows.parquet"), tmp_path / "p.parquet")
    np.testing.assert_allclose(pd.read_parquet(tmp_path / "p.parquet")["proba_1"], expected[:, 1], rtol=1e-6)
    saved = json.loads((result.out_dir / "fit.json").read_text())["result"]
    assert saved["bagging"] == json.loads(json.dumps(result.bagging))
    assert saved["refit"]["reason"] == "bagged"


def test_without_cross_validation_nothing_is_bagged_and_the_refit_runs(ray_session, tmp_path):
    frame = make_frame(600, task="binary", seed=27)
    settings = RayTuneSettings(
        num_samples=2, families=["xgboost"], scheduler="fifo", max_rounds=30, cv_folds=0, bagging=True
    )
    result = AutoMLEngine(RayTuneOptimizer(settings), out_dir=tmp_path, track=False).fit(frame, target="y")
    assert result.bagging == {"done": False, "reason": "no cross-validation: no fold models"}
    assert result.refit["done"] is True


def test_a_single_model_is_refit_with_its_cross_validated_round_count(ray_session, tmp_path):
    frame = make_frame(600, task="regression", seed=23)
    settings = RayTuneSettings(
        num_samples=3,
        families=["xgboost"],
        scheduler="fifo",
        search_algorithm="random",
        max_rounds=80,
        early_stopping_rounds=10,
        ensemble_size=1,
        cv_folds=3,
        bagging=False,
    )
    result = AutoMLEngine(RayTuneOptimizer(settings), out_dir=tmp_path, track=False).fit(frame, target="y")
    assert result.chosen == "single" and result.cv["folds"] == 3
    best = next(c for c in result.cv["candidates"] if c["trial_id"] == result.best_trial)
    assert result.best_score == pytest.approx(best["cv_score"])
    booster = xgb.Booster(model_file=str(result.model_dir / "model.ubj"))
    assert booster.num_boosted_rounds() == best["rounds"] == result.refit["members"][0]["rounds"]
    fresh = make_frame(200, task="regression", seed=24)
    assert np.corrcoef(load_model(result.model_dir).predict(fresh), fresh.y)[0, 1] > 0.8


def test_a_budget_too_short_for_the_best_trial_keeps_the_validation_choice(ray_session, tmp_path):
    frame = make_frame(600, task="binary", seed=25)
    settings = RayTuneSettings(
        num_samples=2,
        families=["lightgbm"],
        scheduler="fifo",
        search_algorithm="random",
        max_rounds=40,
        time_budget_s=1,
    )
    result = AutoMLEngine(RayTuneOptimizer(settings), out_dir=tmp_path, track=False).fit(frame, target="y")
    assert result.cv["done"] is False and result.cv["reason"].startswith("time budget")
    assert result.leaderboard["cv_score"].isna().all()
    best = result.leaderboard.iloc[0]  # the model the driver trained (app.search.fallback) or the best trial
    assert result.best_trial == best.trial_id
    assert result.best_score == pytest.approx(best.score, rel=1e-4)  # its validation score
    assert load_model(result.model_dir).predict_proba(make_frame(50, seed=26)).shape == (50, 2)
