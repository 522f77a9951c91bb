"""Data over ``in_memory_limit_bytes``: each trial trains on Ray Train from the streaming datasets and
its reports reach Tune as ``score`` and ``rounds``."""

import json

import pytest
import xgboost as xgb

from app.data.synthetic import make_frame
from app.search import AutoMLEngine, RayTuneOptimizer, RayTuneSettings
from app.search.raytrain import plan


def test_ray_train_reports_reach_tune_as_score_and_rounds(ray_session, tmp_path):
    from ray import tune

    from app.search.raytrain import fit_reporting

    def fit(callbacks):  # what the Train controller does with the callback after each worker report
        (forward,) = callbacks
        forward.after_report(None, [{"round": 10, "final": False, "logloss": 0.5, "best_iteration": 9}], None)
        forward.after_report(
            None, [{"round": 20, "final": False, "logloss": 0.4, "best_iteration": 19}], None
        )
        forward.after_report(
            None, [{"round": 23, "final": True, "logloss": 0.39, "best_iteration": 22}], None
        )
        return "model"

    def trial(config):
        model = fit_reporting(fit, family="xgboost", metric="logloss")
        tune.report({"score": 0.39, "rounds": 23, "model": model})

    grid = tune.Tuner(
        tune.with_resources(trial, {"CPU": 0.5}),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0),
    ).fit()
    assert grid[0].error is None
    history = grid[0].metrics_dataframe
    # The worker's final report is left out: the trial reports it, with its model.
    assert history["rounds"].tolist() == [10, 20, 23]
    assert history["score"].tolist() == [0.5, 0.4, 0.39]
    assert history["trainer"].tolist()[:2] == ["ray_train", "ray_train"]
    assert history["model"].tolist()[-1] == "model"


def test_plan_leaves_a_cpu_for_ray_data():
    assert plan(cluster_cpus=2, cpus_per_trial=1, max_concurrent=None) == (2, 0.49)
    assert plan(cluster_cpus=16, cpus_per_trial=2, max_concurrent=None) == (8, 1.865)
    concurrent, worker = plan(cluster_cpus=2, cpus_per_trial=1, max_concurrent=50)
    assert concurrent * (worker + 0.01) <= 1.0 + 1e-9 and worker >= 0.05


@pytest.mark.slow
def test_data_over_the_memory_limit_trains_every_trial_on_ray_train(ray_session, tmp_path):
    frame = make_frame(3_000, task="binary", seed=7)
    settings = RayTuneSettings(
        num_samples=2,
        families=["xgboost"],
        max_rounds=40,
        report_every=5,
        early_stopping_rounds=10,
        in_memory_limit_bytes=1_000,
        ensemble_size=1,
    )
    result = AutoMLEngine(RayTuneOptimizer(settings), out_dir=tmp_path, track=False).fit(frame, target="y")
    board = result.leaderboard
    assert result.trainer == "ray_train"
    assert board.trainer.tolist() == ["ray_train", "ray_train"]
    assert (board.status == "completed").all()
    trial = json.loads((result.validated_model_dir / "metadata.json").read_text())
    assert trial["ingest"]["mode"] == "in_memory"  # a Ray Train worker's QuantileDMatrix, not in_process
    refit = result.refit["members"][0]
    assert refit["trainer"] == "ray_train"
    assert refit["rows"] == len(frame)  # train + valid: the default split keeps no test rows
    booster = xgb.Booster(model_file=str(result.model_dir / "model.ubj"))
    assert booster.num_boosted_rounds() == trial["best_iteration"] + 1
    fresh = make_frame(1_000, task="binary", seed=8)
    assert (result.model.predict(fresh) == fresh.y).mean() > 0.8
