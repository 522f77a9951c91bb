"""An anytime search: a model, once trained, is never lost — whether Tune's time budget stops trials
while they save, ASHA stops every trial, or a trial's process is killed — and the fallback is a real
model, said in the CLI's output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from app.data.synthetic import make_frame, write_parquet
from app.search import AutoMLEngine, RayTuneOptimizer, RayTuneSettings
from app.search.candidates import HOOK_ENV, CandidateStore, PersistPolicy, read
from app.train import load_model
from app.train.model import METADATA_FILE
from tests.search.faults import KILLED, MARKS_ENV

ROOT = Path(__file__).resolve().parents[2]


def _fit_process(tmp_path: Path, *args: str, hook: str, search: dict, env: dict | None = None):
    """``automl fit`` in a fresh process with its own local Ray, whose trials run ``hook``."""
    data = tmp_path / "data"
    write_parquet(make_frame(2_000, task="binary", seed=11), data, files=1)
    config = tmp_path / "automl.yaml"
    config.write_text(yaml.safe_dump({"search": search}))
    out = tmp_path / "run"
    run_env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    run_env.update({HOOK_ENV: hook, "PYTHONPATH": str(ROOT), **(env or {})})
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", "fit", str(data), "--target", "y", "--out", str(out)]
        + ["--config", str(config), "--no-refit", *args],
        cwd=ROOT,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return out, json.loads((out / "fit.json").read_text())["result"], proc


def _model_trial(model_dir: Path) -> dict:
    return json.loads((model_dir / METADATA_FILE).read_text())


# --- the persisted candidate --------------------------------------------------------------------


def test_a_half_written_version_is_never_read(tmp_path):
    """The pointer is written last: a model directory written after it, with no pointer naming it
    (a save cut short), leaves the previous version the candidate."""
    from app.search.inprocess import train_local
    from tests.search.test_cv import _data

    data = _data(600, classes=2)
    first = train_local("xgboost", {}, data, num_boost_round=5)
    second = train_local("xgboost", {}, data, num_boost_round=9)
    store = CandidateStore(str(tmp_path / "best"), trial_id="t1")
    store.persist(first, final=False)
    pointer, where = read(str(tmp_path))
    assert pointer["rounds"] == 5 and load_model(where).metadata["num_rounds"] == 5
    # A second version written without its pointer: what a save killed mid-way leaves.
    from app.train.model import save_model

    save_model(second, tmp_path / "best" / "v0002-r9")
    assert read(str(tmp_path))[0]["version"] == pointer["version"]
    store.persist(second, final=True)
    pointer, where = read(str(tmp_path))
    assert pointer["final"] and pointer["rounds"] == 9
    assert sorted(p.name for p in (tmp_path / "best").iterdir()) == ["best.json", pointer["version"]]


def test_persisting_takes_at_most_its_share_of_the_trial(tmp_path):
    now = [0.0]
    policy = PersistPolicy(every_s=1.0, share=0.1, clock=lambda: now[0])
    assert policy.due(0, rung=False)  # the first report always persists
    policy.record(0, seconds=0.5)  # a slow save: the next one waits 0.5 / 0.1 = 5 s
    now[0] = 2.0
    assert not policy.due(4, rung=False)
    assert policy.due(4, rung=True)  # ASHA may stop the trial at a rung: persist before it reports
    assert not policy.due(0, rung=True)  # nothing better than what is persisted
    now[0] = 5.1
    assert policy.due(4, rung=False)


# --- the driver chooses from what is persisted ------------------------------------------------


def test_asha_stopping_every_trial_still_gives_the_best_stopped_trials_model(
    ray_session, tmp_path, monkeypatch
):
    from ray.tune.schedulers import TrialScheduler

    from app.search.deadline import RecordingASHA

    base = RecordingASHA.on_trial_result

    def stop_everyone(self, controller, trial, result):
        base(self, controller, trial, result)
        self.stopped.add(trial.trial_id)
        return TrialScheduler.STOP

    monkeypatch.setattr(RecordingASHA, "on_trial_result", stop_everyone)
    frame = make_frame(1_500, task="binary", seed=9)
    settings = RayTuneSettings(
        num_samples=3,
        max_rounds=200,
        report_every=5,
        grace_period=2,
        families=["xgboost", "lightgbm", "catboost"],
        max_concurrent_trials=2,
        cv_folds=0,
        refit=False,
    )
    result = AutoMLEngine(RayTuneOptimizer(settings), out_dir=tmp_path, track=False).fit(
        frame.drop(columns=["y"]), frame["y"]
    )
    board = result.leaderboard
    assert set(board["status"]) == {"stopped"}
    assert not result.search.get("fallback")
    best = board.iloc[0]
    persisted = {c["trial_id"]: c for c in result.search["persisted"]}
    # CatBoost too, whose model exists only once fit returns: it paused, handed it over and went on.
    assert {c["family"] for c in persisted.values()} == {"xgboost", "lightgbm", "catboost"}
    assert all(c["model"] for c in persisted.values())
    chosen = result.model_dir / "members" if result.chosen == "ensemble" else result.model_dir
    assert chosen.exists()
    if result.chosen == "single":
        meta = _model_trial(result.model_dir)
        assert meta["best_score"] == pytest.approx(best["score"])
        assert 1 < meta["num_rounds"] <= 10  # the model as persisted at its first rung, not one round
    assert result.best_score == pytest.approx(best["score"])


@pytest.mark.slow
def test_trials_stopped_by_the_time_budget_while_they_save_leave_their_persisted_models(tmp_path):
    """Each trial's final save hangs past Tune's time budget (the issue's lost 7-class fit): the fit
    still chooses the best model the trials persisted at their reports, and the CLI says nothing of a
    fallback."""
    out, result, proc = _fit_process(
        tmp_path,
        "--time-budget",
        "40",
        "--no-refit",
        hook="tests.search.faults:slow_final_save",
        search={"families": ["xgboost", "lightgbm"], "max_rounds": 400, "report_every": 5, "cv_folds": 0},
    )
    search = result["search"]
    assert not search.get("fallback"), search.get("note")
    assert search["statuses"].get("cut", 0) >= 1
    kept = [c for c in search["persisted"] if c["model"]]
    assert kept, search["persisted"]
    board = pd.read_csv(out / "leaderboard.csv")
    best = board.iloc[0]
    assert best["status"] == "cut"
    model_dir = out / "model"
    trials = [p.name for p in (model_dir / "members").iterdir()] if result["chosen"] == "ensemble" else None
    assert trials is None or best["trial_id"] in trials
    assert (
        _model_trial(model_dir if trials is None else model_dir / "members" / best["trial_id"])["num_rounds"]
        > 1
    )
    assert "warning" not in proc.stderr


@pytest.mark.slow
def test_a_trial_process_killed_mid_training_leaves_its_last_persisted_model(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    out, result, _ = _fit_process(
        tmp_path,
        "--num-samples",
        "4",
        hook="tests.search.faults:kill_at_second_persist",
        search={
            "families": ["xgboost"],
            "max_rounds": 300,
            "report_every": 5,
            "grace_period": 1,
            "reduction_factor": 2,
            "cv_folds": 0,
        },
        env={MARKS_ENV: str(marks)},
    )
    killed = (marks / KILLED).read_text()
    persisted = {c["trial_id"]: c for c in result["search"]["persisted"]}
    assert persisted[killed]["status"] == "errored"
    assert persisted[killed]["model"], persisted[killed]
    model = load_model(persisted[killed]["model"])
    assert model.metadata["num_rounds"] == int((marks / killed).read_text())


def test_the_search_ends_earlier_when_the_trials_measure_a_slower_choice():
    """Trials report how long persisting and predicting took: when choosing among the ensemble's members
    would need more than the window kept after its deadline, the search's end and its hard stop move
    earlier by the difference — and never later."""
    from types import SimpleNamespace

    from app.search.deadline import ChoiceMeter, HardStop

    limiter = SimpleNamespace(deadline=1_000.0)
    stop = HardStop(1_004.0)
    meter = ChoiceMeter(limiter, stop, kept_s=6.0, slack_s=4.0, members=2)
    trial = SimpleNamespace(trial_id="a")
    meter.on_trial_result(1, [], trial, {"persist_s": 0.2})  # 4 + 0.4 < 6: as planned
    assert (limiter.deadline, stop.at) == (1_000.0, 1_004.0)
    meter.on_trial_result(2, [], trial, {"persist_s": 1.0, "predict_s": 1.5})  # 4 + 3.5 = 7.5
    assert limiter.deadline == pytest.approx(998.5) and stop.at == pytest.approx(1_002.5)
    other = SimpleNamespace(trial_id="b")
    meter.on_trial_result(3, [], other, {"persist_s": 0.5, "predict_s": 1.0})  # two members: 4 + 3.5 + 2
    assert limiter.deadline == pytest.approx(996.5)
    meter.on_trial_result(4, [], other, {"persist_s": 0.01})  # a faster report moves nothing back
    assert limiter.deadline == pytest.approx(996.5)


def test_the_cli_warns_when_the_model_is_a_fallback_or_much_weaker_than_a_trial_reported():
    from app.search.leaderboard import warning

    persisted = [{"trial_id": "a", "family": "lightgbm", "status": "cut", "score": 0.80, "model": "/m/a"}]
    record = {"persisted": persisted, "best_reported": {"trial_id": "b", "family": "xgboost", "score": 0.59}}
    line = warning(record, mode="min")
    assert line.startswith("warning: the best persisted model scores 0.80000") and "trial b (xgboost)" in line
    assert (
        warning({**record, "best_reported": {**record["best_reported"], "score": 0.795}}, mode="min") is None
    )
    fallback = {"fallback": True, "note": "no trial persisted a model before the search ended; ..."}
    assert warning(fallback, mode="max") == f"warning: {fallback['note']}"


def test_catboost_paused_for_its_model_boosts_on_to_the_same_rounds():
    """A round hook asking for CatBoost's model mid-way gets it, and training goes on from it."""
    from app.search.inprocess import PAUSE, train_local
    from tests.search.test_cv import _data

    data = _data(800, classes=2)
    seen = []

    def on_round(r):
        if r.done in (10, 25) and r.snapshot is None:
            return PAUSE
        if r.snapshot is not None:
            seen.append((r.done, r.snapshot().num_rounds))
        return False

    result = train_local(
        "catboost",
        {"learning_rate": 0.1},
        data,
        num_boost_round=40,
        early_stopping_rounds=None,
        on_round=on_round,
    )
    assert seen == [(10, 10), (25, 25)]
    assert result.num_rounds == 40 and result.model.tree_count_ == 40


def test_the_fallback_trains_a_real_model_until_the_stages_after_the_search_would_start(
    ray_session, tmp_path, monkeypatch
):
    """No trial persisted anything (every trial errored before its first report, say): the driver's
    model boosts with early stopping for the time the stages after the search were given, not one
    round, and the search record says so."""
    from app.search import engine, fallback

    monkeypatch.setattr(
        engine.leaderboard, "from_results", _board_without_models(engine.leaderboard.from_results)
    )
    frame = make_frame(3_000, task="binary", seed=3)
    settings = RayTuneSettings(
        time_budget_s=40, families=["xgboost"], max_rounds=2_000, cv_folds=0, refit=False, num_samples=2
    )
    result = AutoMLEngine(RayTuneOptimizer(settings), out_dir=tmp_path, track=False).fit(
        frame.drop(columns=["y"]), frame["y"]
    )
    assert result.search["fallback"] and "the driver trained xgboost's defaults" in result.search["note"]
    assert (tmp_path / fallback.MODEL_DIR).is_dir()
    assert _model_trial(result.model_dir)["num_rounds"] > 10


def _board_without_models(from_results):
    def board(results, **kwargs):
        return from_results(results, **kwargs).assign(checkpoint=None)

    return board


def test_a_resumed_search_ends_where_the_new_fit_says_not_where_the_interrupted_one_did(
    ray_session, tmp_path
):
    """Tune pickles the searcher and the callbacks with the Tuner: restored, the hard stop and the
    meter would carry the interrupted fit's end, long past, and kill every resumed trial at once."""
    from app.search.budget import SearchWindow
    from app.search.deadline import ChoiceMeter, HardStop
    from app.search.tuner import make_tuner, restore_tuner, search_spec
    from tests.search.test_cv import _data

    data = _data(300, classes=2)
    settings = RayTuneSettings(time_budget_s=60, families=["xgboost"], max_rounds=20)
    spec = search_spec(settings, "binary")
    old = SearchWindow(seconds=10.0, deadline=1_000.0, backstop_s=13.0)
    make_tuner(
        data,
        settings,
        spec,
        storage_path=str(tmp_path),
        n_rows=240,
        n_features=3,
        window=old,
        max_concurrent=1,
    )
    new = SearchWindow(seconds=30.0, deadline=5_000.0, backstop_s=34.0)
    tuner = restore_tuner(data, settings, spec, storage_path=str(tmp_path), window=new)
    local = tuner._local_tuner
    callbacks = {type(c): c for c in local._run_config.callbacks}
    assert callbacks[HardStop].at == 5_004.0 and not callbacks[HardStop].cut
    meter = callbacks[ChoiceMeter]
    assert meter.limiter is local._tune_config.search_alg and meter.base == (5_000.0, 5_004.0)
