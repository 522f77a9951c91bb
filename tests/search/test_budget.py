"""The time budget: the search uses it all, trials stop at its deadline with their models, a short
budget still gives a model, and every fit ends within the budget and a tenth."""

import json
import time

import numpy as np
import pandas as pd
import pytest

from app.data.encode import Preprocessor
from app.data.synthetic import make_frame
from app.search import AutoMLEngine, RayTuneOptimizer, RayTuneSettings
from app.search.budget import (
    END_S,
    REFIT_SHARE,
    SEARCH_TRIALS_GUESS,
    TRACK_PER_TRIAL_S,
    end_seconds,
    search_window,
)
from app.search.inprocess import TrialData, train_local
from app.train.metrics import NativeMetric, get_metric
from app.train.result import WorkerSpec
from tests.cli.conftest import automl

FAMILIES = ["xgboost", "lightgbm", "catboost"]


@pytest.fixture(scope="module")
def small_data() -> TrialData:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3_000, 5)).astype(np.float32)
    y = (x[:, 0] + rng.normal(size=len(x)) > 0).astype(np.float32)
    pre = Preprocessor(
        features=[f"x{i}" for i in range(5)],
        categories={},
        datetime=[],
        target="y",
        task="binary",
        classes=[0, 1],
    )
    return TrialData(x[:2_400], y[:2_400], None, x[2_400:], y[2_400:], None, pre.to_dict())


@pytest.mark.parametrize("family", FAMILIES)
def test_past_the_deadline_a_trial_boosts_one_round_and_keeps_its_model(family, small_data):
    result = train_local(family, {}, small_data, num_boost_round=10_000, deadline=time.time() - 1)
    assert (result.num_rounds, result.deadline_reached) == (1, True)
    assert result.predictor().metadata["deadline_reached"] is True


@pytest.mark.parametrize("family", FAMILIES)
def test_a_trial_stops_at_its_deadline_with_its_best_round_so_far(family, small_data):
    train_local(family, {}, small_data, num_boost_round=1)  # the library loaded: the clock is the rounds'
    started = time.time()
    result = train_local(
        family,
        {"eta": 0.01} if family == "xgboost" else {"learning_rate": 0.01},
        small_data,
        num_boost_round=1_000_000,
        early_stopping_rounds=1_000_000,
        deadline=started + 1.0,
    )
    assert result.deadline_reached and 1 < result.num_rounds < 1_000_000
    assert time.time() - started < 10
    history = result.history[result.metric_name]
    assert result.best_iteration == int(np.argmin(history))
    assert result.best_score == min(history)


def test_on_ray_train_a_worker_stops_at_the_deadline_and_says_so():
    from app.train.cadence import Reporter

    metric = NativeMetric(get_metric("logloss"), "logloss")
    spec = WorkerSpec(
        family="xgboost",
        task="binary",
        params={},
        num_boost_round=1_000,
        early_stopping_rounds=None,
        checkpoint_every=10_000,
        report_every_s=None,
        min_report_interval_s=1.0,
        metrics=[metric],
        preprocessor={},
        deadline=time.time() + 3_600,
    )
    reporter = Reporter(spec=spec, rank=0, world_size=1, save_model=lambda m, d: None)
    assert not reporter.after_round(None, 1, {"logloss": 0.5})
    spec.deadline = time.time() - 1
    assert reporter.after_round(None, 2, {"logloss": 0.4})
    assert reporter.stopper.stopped  # the families' loops that test the flag stop too
    state = reporter.state(2, final=True)
    assert state["deadline_reached"] and not state["stopped_early"]


def test_the_searcher_proposes_no_trial_past_the_deadline_but_the_first():
    from ray.tune.search import Searcher

    from app.search.deadline import DeadlineLimiter

    class Counter(Searcher):
        def suggest(self, trial_id):
            return {"trial": trial_id}

    late = DeadlineLimiter(Counter(), max_concurrent=4, deadline=time.time() - 1)
    assert late.suggest("a") == {"trial": "a"}
    assert late.suggest("b") == Searcher.FINISHED
    early = DeadlineLimiter(Counter(), max_concurrent=4, deadline=time.time() + 3_600)
    assert [early.suggest(t) for t in "ab"] == [{"trial": "a"}, {"trial": "b"}]
    early.set_state(late.get_state())  # a resumed search keeps its own deadline
    assert early.suggest("c") == {"trial": "c"}


def test_trials_beyond_those_planned_bring_the_deadline_earlier():
    """Each trial tracked after the search costs time: past the count the window's reserve planned for,
    every trial started comes out of the search's end (1,000 one-second-tracked trials on a small set
    took the time of cross-validation and refit)."""
    from ray.tune.search import Searcher

    from app.search.deadline import DeadlineLimiter

    class Counter(Searcher):
        def suggest(self, trial_id):
            return {"trial": trial_id}

    start = time.time()
    limiter = DeadlineLimiter(Counter(), max_concurrent=100, deadline=start + 30, planned=2, per_trial_s=10)
    proposed = [limiter.suggest(str(t)) for t in range(7)]
    # 2 planned, then each one started takes 10 s of the 30 s left: after 5, none is left
    assert proposed[:5] == [{"trial": str(t)} for t in range(5)]
    assert proposed[5:] == [Searcher.FINISHED] * 2
    assert limiter.ends_at() == pytest.approx(start)
    window = search_window(
        RayTuneSettings(time_budget_s=100),
        None,
        started=0.0,
        track=True,
        clock=lambda: 0.0,
        wall_clock=lambda: 0.0,
    )
    assert (window.trials, window.per_trial_s) == (min(SEARCH_TRIALS_GUESS, 400), TRACK_PER_TRIAL_S)
    assert (
        search_window(
            RayTuneSettings(time_budget_s=100), None, started=0.0, track=False, clock=lambda: 0.0
        ).per_trial_s
        == 0.0
    )


def test_the_search_gets_what_the_start_left_less_the_reserve_and_never_waits():
    settings = RayTuneSettings(time_budget_s=30)
    window = search_window(
        settings, None, started=90.0, track=False, clock=lambda: 100.0, wall_clock=lambda: 5e5
    )
    # less the refit's share: no cross-validation without data
    assert window.seconds == pytest.approx(30 - 10 - END_S - REFIT_SHARE * 30)
    assert window.deadline == pytest.approx(5e5 + window.seconds)
    no_refit = search_window(
        RayTuneSettings(time_budget_s=30, refit=False), None, started=90.0, track=False, clock=lambda: 100.0
    )
    assert no_refit.seconds == pytest.approx(30 - 10 - END_S)
    late = search_window(settings, None, started=0.0, track=True, clock=lambda: 100.0, wall_clock=lambda: 5e5)
    assert late.seconds == 0.0
    assert search_window(RayTuneSettings(), None, started=0.0, track=True) is None


def test_cross_validation_gets_a_tenth_of_the_budget_when_that_can_start_its_workers(small_data):
    settings = RayTuneSettings(time_budget_s=60)  # 3,000 rows: cross-validated
    window = search_window(settings, small_data, started=0.0, track=False, clock=lambda: 10.0)
    assert window.seconds == pytest.approx(60 - 10 - end_seconds(60, small_data) - 6)
    assert window.backstop_s > window.seconds  # Tune's own time budget comes after the deadline
    short = search_window(settings, small_data, started=0.0, track=False, clock=lambda: 40.0)
    assert short.seconds == pytest.approx((60 - 40 - end_seconds(60, small_data)) * 2 / 3)
    shorter = search_window(settings, small_data, started=0.0, track=False, clock=lambda: 50.0)
    assert shorter.seconds == pytest.approx(60 - 50 - end_seconds(60, small_data))


def test_the_search_record_says_how_far_the_search_got_and_what_ended_it():
    from app.search.budget import SearchWindow
    from app.search.leaderboard import frame, search_summary
    from app.search.records import search_record

    rows = [
        {"trial_id": f"t{i}", "family": "xgboost", "score": 0.5 - i / 10, "status": status, "params": "{}"}
        | {"checkpoint": f"/m/t{i}" if status != "stopped" else None, "history": "[0.9, 0.6]"}
        for i, status in enumerate(["completed", "completed", "deadline", "stopped"])
    ]
    board = frame(rows, mode="min")
    window = SearchWindow(seconds=20.0, deadline=0.0)
    timed = search_record(board, RayTuneSettings(time_budget_s=30), window=window, seconds=20.4, mode="min")
    assert timed["ended_by"] == "time budget" and timed["statuses"]["deadline"] == 1
    assert [c["model"] for c in timed["persisted"]] == [None, "/m/t2", "/m/t1", "/m/t0"]  # best first
    assert timed["best_reported"]["score"] == 0.6
    line = search_summary(timed)
    assert line.startswith("search: 4 trials (2 completed, ") and "time budget" in line
    assert "1 ended by the deadline with its model so far" in line and "1 stopped by ASHA" in line
    finished = board.assign(status="completed")
    settings = RayTuneSettings(time_budget_s=30, num_samples=4)
    assert (
        search_record(finished, settings, window=window, seconds=9.0, mode="min")["ended_by"] == "num_samples"
    )


def test_the_time_budget_bounds_the_trials_unless_num_samples_is_given():
    assert RayTuneSettings(time_budget_s=60).trials == -1
    assert RayTuneSettings(time_budget_s=60, num_samples=12).trials == 12
    assert RayTuneSettings().trials == 30
    assert RayTuneSettings().for_rows(100_000).max_rounds == 2_000
    assert RayTuneSettings(max_rounds=50).for_rows(100_000).max_rounds == 50


def test_a_budget_the_start_used_up_gives_one_model_trained_in_the_driver(ray_session, tmp_path):
    frame = make_frame(1_000, task="binary", seed=4)
    settings = RayTuneSettings(time_budget_s=1, cv_folds=0)
    result = AutoMLEngine(RayTuneOptimizer(settings), out_dir=tmp_path, track=False).fit(frame, target="y")
    assert result.search["trials"] == 1 and "no search" in result.search["note"]
    assert result.leaderboard["status"].iloc[0] in ("completed", "deadline")
    assert result.model.predict(frame.head(3)).shape == (3,)
    assert not (tmp_path / "tune").exists()  # no Tune experiment was started


def test_a_short_budget_on_100k_rows_gives_a_model_within_the_budget(ray_session, tmp_path):
    """The issue's case: 100k rows x 50 features x 7 classes, ``--time-budget 30``."""
    data = tmp_path / "data.parquet"
    make_frame(100_000, task="multiclass", n_numeric=48, n_classes=7, seed=3).to_parquet(data)
    out = tmp_path / "run"
    started = time.monotonic()
    run = automl("fit", data, "--target", "y", "--time-budget", 30, "--out", out)
    wall = time.monotonic() - started
    assert run.exit_code == 0, run.output[-3000:]
    assert wall <= 33, run.output[-3000:]
    fit = json.loads((out / "fit.json").read_text())["result"]
    assert fit["search"]["ended_by"] == "time budget" and fit["search"]["trials"] >= 1
    assert fit["wall_time_s"] <= 33
    # Tracking ran inside the budget, and fit.json says where it went and what the clock cut from it.
    assert fit["tracking"]["run_id"] and "error" not in fit["tracking"]
    known = {"run_id", "tracking_uri", "registered", "report", "trials_logged", "trials_cut"}
    assert set(fit["tracking"]) <= known
    assert "search:" in run.output and "of a 30 s budget" in run.output
    board = pd.read_csv(out / "leaderboard.csv")
    assert {"accuracy", "f1_macro"} <= set(board.columns)  # beside the search metric, mlogloss
    assert board["status"].isin(["completed", "deadline"]).any()
    assert (out / "model" / "metadata.json").exists()


def test_without_num_samples_the_search_uses_the_whole_budget(ray_session, tmp_path):
    """Trials of well under a second (scikit-learn's breast cancer set): the budget, not a trial count,
    ends the search, and the fit ends between 85% and 110% of the budget."""
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    budget = 20.0
    settings = RayTuneSettings(time_budget_s=budget)
    started = time.monotonic()
    result = AutoMLEngine(RayTuneOptimizer(settings), out_dir=tmp_path, track=False).fit(x, y)
    wall = time.monotonic() - started
    assert 0.85 * budget <= wall <= 1.1 * budget, (result.timings, result.search)
    assert result.search["ended_by"] == "time budget" and "note" not in result.search
