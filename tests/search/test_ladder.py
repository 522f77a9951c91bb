"""Rows as a resource of the search (``app.search.ladder``): the rungs, the stratified samples, the
ladder's decisions, and a search whose configurations climb from a sample to every row, the chosen one
grown to every row before it is saved."""

import json
import time

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking._tracking_service.utils import _use_tracking_uri
from ray.tune.search import Searcher

from app.data.synthetic import make_frame
from app.search import AutoMLEngine, RayTuneOptimizer, RayTuneSettings
from app.search.fairness import BracketASHA
from app.search.inprocess import TrialData
from app.search.inputs import dataset_spec
from app.search.ladder import AUTO_ROWS, RowLadder, ladder_for, rungs, stratified_order
from app.train import load_model

# --- rungs and samples -----------------------------------------------------------------------------


def test_rungs_grow_by_four_up_to_every_row():
    assert rungs(6_000_000, 10_000) == [10_000, 40_000, 160_000, 640_000, 2_560_000, 6_000_000]
    # A rung over half the rows would nearly repeat the last one: the ladder goes straight to every row.
    assert rungs(300_000, 10_000) == [10_000, 40_000, 300_000]
    assert rungs(15_000, 10_000) == [15_000]  # one rung: no ladder


def test_the_ladder_is_on_from_half_a_million_rows_unless_the_settings_say():
    auto = RayTuneSettings()
    assert ladder_for(auto, AUTO_ROWS - 1) is None
    assert ladder_for(auto, AUTO_ROWS) == rungs(AUTO_ROWS, 10_000)
    assert ladder_for(RayTuneSettings(row_ladder=True, first_rung_rows=1000), 5000) == [1000, 5000]
    assert ladder_for(RayTuneSettings(row_ladder=True), 15_000) is None  # too few rows for two rungs
    assert ladder_for(RayTuneSettings(row_ladder=False), 10 * AUTO_ROWS) is None


def test_every_prefix_of_the_order_is_a_stratified_sample():
    rng = np.random.default_rng(3)
    y = rng.choice([0, 1, 2], size=20_000, p=[0.9, 0.07, 0.03]).astype(np.float32)
    order = stratified_order(y, classes=True, seed=7)
    assert sorted(order.tolist()) == list(range(len(y)))  # a permutation: every row once
    assert np.array_equal(order, stratified_order(y, classes=True, seed=7))  # reproducible
    assert not np.array_equal(order, stratified_order(y, classes=True, seed=8))
    share = np.bincount(y.astype(int)) / len(y)
    for n in (100, 1000, 4000):
        counts = np.bincount(y[order[:n]].astype(int), minlength=3)
        # Each class within one row of its share (a plain random sample of 100 rows is off by ~3).
        assert np.all(np.abs(counts - share * n) <= 1.0 + 1e-9), (n, counts, share * n)


def test_a_sample_is_a_view_of_the_shared_rows():
    x = np.arange(40, dtype=np.float32).reshape(20, 2)
    y = np.arange(20, dtype=np.float32)
    data = TrialData(x, y, y.copy(), x[:4], y[:4], None, {})
    order = np.arange(20)[::-1]
    moved = data.reordered(order)
    assert np.array_equal(moved.y_train, y[::-1]) and np.array_equal(moved.w_train, y[::-1])
    head = moved.head(5)
    assert np.shares_memory(head.x_train, moved.x_train) and len(head.y_train) == 5
    assert head.x_valid is data.x_valid and moved.head(50) is moved


# --- the ladder's decisions ------------------------------------------------------------------------


class _Numbered(Searcher):
    """Proposes configurations 0, 1, 2, ... and records what it is told."""

    def __init__(self):
        super().__init__(metric="score", mode="min")
        self.next, self.completed = 0, []

    def suggest(self, trial_id):
        self.next += 1
        return {"family": "xgboost", "xgboost__n": self.next - 1}

    def on_trial_complete(self, trial_id, result=None, error=False):
        self.completed.append(trial_id)

    def save(self, checkpoint_path):
        with open(checkpoint_path, "w") as f:
            json.dump({"next": self.next, "completed": self.completed}, f)

    def restore(self, checkpoint_path):
        with open(checkpoint_path) as f:
            saved = json.load(f)
        self.next, self.completed = saved["next"], saved["completed"]


def _finish(ladder, trial, score, *, finished=True, seconds=1.0):
    ladder.on_trial_complete(trial, {"score": score, "finished": finished, "time_total_s": seconds})


def test_the_best_quarter_of_a_rung_climbs_before_any_new_configuration():
    inner = _Numbered()
    ladder = RowLadder(inner, ladder=[100, 400, 1600])
    configs = {f"t{i}": ladder.suggest(f"t{i}") for i in range(4)}
    assert all(c["rows"] == 100 for c in configs.values())
    for i, score in enumerate([0.5, 0.2, 0.4, 0.3]):
        _finish(ladder, f"t{i}", score)
    climbed = ladder.suggest("t4")
    assert climbed == {**configs["t1"], "rows": 400}  # the best of four, on four times the rows
    assert inner.next == 4  # the wrapped searcher was not asked
    assert ladder.suggest("t5")["rows"] == 100  # no other configuration is in the best quarter
    _finish(ladder, "t4", 0.1)
    _finish(ladder, "t5", 0.6)
    # Only its own trials reach the wrapped searcher: the climb is not a new point of its space.
    assert inner.completed == ["t0", "t1", "t2", "t3", "t5"]
    assert ladder.counts() == [
        {"rows": 100, "trials": 5},
        {"rows": 400, "trials": 1},
        {"rows": 1600, "trials": 0},
    ]


def test_a_trial_stopped_by_asha_never_climbs():
    ladder = RowLadder(_Numbered(), ladder=[100, 400])
    for i in range(4):
        ladder.suggest(f"t{i}")
    _finish(ladder, "t0", 0.1, finished=False)  # the best score, but stopped at a rung
    for i, score in ((1, 0.5), (2, 0.4), (3, 0.3)):
        _finish(ladder, f"t{i}", score)
    assert ladder.suggest("t4")["rows"] == 100


def test_the_leader_goes_straight_to_the_largest_rung_it_can_train_on_in_time():
    ladder = RowLadder(_Numbered(), ladder=[100, 400, 1600, 6400])
    ladder.suggest("t0")
    ladder.suggest("t1")
    _finish(ladder, "t0", 0.2, seconds=10.0)  # 0.1 s a row: 40 s on 400 rows, 160 s on 1,600, 640 s on 6,400
    assert ladder.fit_seconds("t0", 0, 2) == pytest.approx(160.0)
    now = time.time()
    ladder.started, ladder.until = now - 1000, now + 1000  # a window of 2,000 s: 6,400 rows is over 40 %
    assert ladder.suggest("t2")["rows"] == 100  # its time has not come: it waits for its rung to judge it
    ladder.until = now + 200  # 200 s left: at most 1.5 x the fit on 1,600 rows, which still ends in time
    assert ladder.suggest("t3") == {**ladder.config_of["t0"], "rows": 1600}
    assert ladder.suggest("t4")["rows"] == 100  # climbing: once
    ladder2 = RowLadder(_Numbered(), ladder=[100, 400, 1600])
    ladder2.suggest("t0")
    _finish(ladder2, "t0", 0.2, seconds=10.0)
    ladder2.started, ladder2.until = now - 1000, now + 30  # no rung above fits in the time left
    assert ladder2.suggest("t1")["rows"] == 100


def test_the_ladder_s_state_survives_save_and_restore(tmp_path):
    ladder = RowLadder(_Numbered(), ladder=[100, 400])
    for i in range(4):
        ladder.suggest(f"t{i}")
        _finish(ladder, f"t{i}", float(i))
    path = str(tmp_path / "searcher.pkl")
    ladder.save(path)
    again = RowLadder(_Numbered(), ladder=[100, 400])
    again.restore(path)
    assert again.searcher.next == 4 and again.scores == ladder.scores
    assert again.suggest("t4") == {**ladder.config_of["t0"], "rows": 400}


def test_asha_judges_a_trial_only_against_trials_on_as_many_rows():
    asha = BracketASHA(time_attr="rounds", grace_period=10, max_t=100, reduction_factor=3, keys=("rows",))
    asha.set_search_properties("score", "min")

    class _Trial:
        def __init__(self, trial_id, rows):
            self.trial_id, self.config = trial_id, {"family": "xgboost", "rows": rows}

    trials = [_Trial("a", 100), _Trial("b", 100), _Trial("c", 400)]
    for t in trials:
        asha.on_trial_add(None, t)
    assert asha._trial_info["a"] is asha._trial_info["b"]
    assert asha._trial_info["a"] is not asha._trial_info["c"]


# --- a search on the ladder ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ladder_fit(ray_session, tmp_path_factory):
    """12,000 rows, a first rung of 500: rungs of 500, 2,000 and every training row. Every trial runs to
    its end (FIFO) and no deadline calls a final climb: the quarter of each rung climbs, so 16
    configurations on 500 rows take one to every row."""
    frame = make_frame(12_000, task="binary", seed=5)
    settings = RayTuneSettings(
        num_samples=24,
        scheduler="fifo",
        families=["xgboost", "lightgbm"],
        max_rounds=80,
        report_every=5,
        early_stopping_rounds=10,
        ensemble_size=1,
        row_ladder=True,
        first_rung_rows=500,
    )
    out = tmp_path_factory.mktemp("ladder")
    result = AutoMLEngine(RayTuneOptimizer(settings), out_dir=out, track=False).fit(frame, target="y")
    return result, out


def test_configurations_climb_the_ladder_and_the_board_says_each_trial_s_rows(ladder_fit):
    result, out = ladder_fit
    board = pd.read_csv(out / "leaderboard.csv")
    n_train = int(board["rows"].max())
    assert set(board["rows"]) <= {500, 2000, n_train} and n_train > 2000
    assert (board["rows"] == 500).sum() > (board["rows"] > 500).sum() > 0
    record = json.loads((out / "fit.json").read_text())["result"]["search"]
    assert record["row_ladder"][0] == {"rows": 500, "trials": int((board["rows"] == 500).sum())}
    # A configuration on more rows was first on fewer: the same parameters, once per rung.
    climbed = board[board["rows"] > 500]
    assert climbed["params"].isin(board.loc[board["rows"] == 500, "params"]).all()


def test_the_chosen_model_is_trained_on_every_row(ladder_fit):
    result, out = ladder_fit
    board = result.leaderboard.set_index("trial_id")
    n_train = int(board["rows"].max())
    meta = json.loads((result.model_dir / "metadata.json").read_text())
    grown = [g for g in result.refit.get("all_rows", []) if g["replaced"]]
    if board.loc[result.best_trial, "rows"] < n_train:  # chosen on a sample: grown before it was saved
        assert grown and grown[0]["sample_rows"] == board.loc[result.best_trial, "rows"]
        assert meta["all_rows"]["rows"] == n_train
    # Refit on train + valid after the growth, or the model of every training row as it stands.
    rows = meta.get("refit", {}).get("rows") or meta["ingest"]["rows"]
    assert rows >= n_train
    frame = make_frame(200, task="binary", seed=6)
    proba = load_model(out / "model").predict_scores(frame.drop(columns=["y"]))
    assert np.asarray(proba).shape[0] == 200


def _small_ladder(**settings) -> RayTuneSettings:
    """XGBoost trials run to their end on a ladder whose first rung is 500 rows."""
    fixed = {"families": ["xgboost"], "search_algorithm": "random", "scheduler": "fifo", "max_rounds": 60}
    fixed |= {"report_every": 5, "early_stopping_rounds": 10, "ensemble_size": 1}
    return RayTuneSettings(**fixed, row_ladder=True, first_rung_rows=500, **settings)


def test_a_member_chosen_on_a_sample_is_grown_to_every_row(ray_session, tmp_path):
    """One rung of growth: every trial on the first rung (num_samples too few to climb), so the chosen one
    is a sample's model, and the fit trains it again on every row with early stopping."""
    frame = make_frame(6_000, task="binary", seed=9)
    settings = _small_ladder(num_samples=3, cv_folds=0)  # cross-validation's models train on every row
    result = AutoMLEngine(RayTuneOptimizer(settings), out_dir=tmp_path).fit(frame, target="y")
    board = result.leaderboard.set_index("trial_id")
    assert set(board["rows"]) == {500}
    (grown,) = result.refit["all_rows"]
    assert grown["trial_id"] == result.best_trial and grown["sample_rows"] == 500
    assert grown["rows"] > 4000  # every training row of 6,000 (less the validation split)
    meta = json.loads((result.model_dir / "metadata.json").read_text())
    if grown["replaced"]:
        assert meta["all_rows"]["trial_id"] == result.best_trial
        assert result.refit["done"] is True  # every member now holds every row: refit on train + valid
    else:  # the sample's model scored better: kept, and not refit with a sample's rounds
        assert result.refit["done"] is False and "sample" in result.refit["reason"]
    # The model tracked in MLflow is the one saved: the same predictions.
    # The fit's own store for this load only: a tracking URI left set would move the tests after this one.
    with _use_tracking_uri(result.tracking["tracking_uri"]):
        tracked = mlflow.pyfunc.load_model(f"runs:/{result.tracking['run_id']}/model")
    rows = make_frame(300, task="binary", seed=10).drop(columns=["y"])
    saved = np.asarray(load_model(result.model_dir).predict_proba(rows))[:, 1]
    logged = np.asarray(tracked.predict(rows, params={"method": "predict_proba"}))[:, 1]
    np.testing.assert_allclose(logged, saved, rtol=1e-5)


@pytest.mark.slow
def test_over_the_memory_limit_the_search_runs_on_a_sample_and_the_model_on_every_row(ray_session, tmp_path):
    """Data over ``in_memory_limit_bytes`` with the ladder: trials train in process on a sample of what
    fits (Ray Data draws it), and the chosen model is then trained on every row on Ray Train."""
    frame = make_frame(6_000, task="binary", seed=11)
    settings = _small_ladder(num_samples=4, in_memory_limit_bytes=60_000)  # a few thousand encoded rows
    result = AutoMLEngine(RayTuneOptimizer(settings), out_dir=tmp_path, track=False).fit(frame, target="y")
    board = result.leaderboard
    assert set(board["trainer"]) == {"in_process"} and result.trainer == "in_process"
    (grown,) = result.refit["all_rows"]
    sample = int(board["rows"].max())
    assert grown["trainer"] == "ray_train" and len(frame) > grown["rows"] > sample  # less the valid split
    assert (
        grown["trial_id"] == result.best_trial
        and grown["sample_rows"] == board.set_index("trial_id").loc[result.best_trial, "rows"]
    )
    assert result.refit["done"] is False and "sample of the rows" in result.refit["reason"]
    meta = json.loads((result.model_dir / "metadata.json").read_text())
    if grown["replaced"]:
        assert meta["all_rows"]["rows"] == grown["rows"] and meta["ingest"]["mode"] != "in_process"
    else:
        assert meta["ingest"]["rows"] == grown["sample_rows"]
    fresh = make_frame(1_000, task="binary", seed=12)
    assert (result.model.predict(fresh) == fresh.y).mean() > 0.7


def test_a_fit_on_more_rows_is_estimated_from_two_rungs_of_the_same_configuration():
    ladder = RowLadder(_Numbered(), ladder=[100, 400, 1600])
    for i in range(4):
        ladder.suggest(f"t{i}")
        _finish(ladder, f"t{i}", [0.1, 0.5, 0.4, 0.3][i], seconds=5.0)
    # One rung: linear in rows, the fixed part included (5 s on 100 rows: 80 s on 1,600).
    assert ladder.fit_seconds("t0", 0, 2) == pytest.approx(80.0)
    climbed = ladder.suggest("t4")
    assert climbed["rows"] == 400
    _finish(ladder, "t4", 0.05, seconds=8.0)  # 3 s for 300 more rows: 1 s per 100 rows on a 4 s fixed part
    assert ladder.fit_seconds("t4", 1, 2) == pytest.approx(8.0 + 12.0)


def test_the_validation_rows_are_one_stratified_sample_for_every_rung(monkeypatch, ray_session, tmp_path):
    """Over ``VALID_ROWS`` validation rows a ladder's trials score on a stratified sample of them, the same
    for every trial (here the cap is lowered to 300 of the 2,400 validation rows)."""
    from app.search import ladder

    monkeypatch.setattr(ladder, "VALID_ROWS", 300)
    frame = make_frame(12_000, task="binary", seed=13)
    settings = RayTuneSettings(
        num_samples=2,
        families=["xgboost"],
        search_algorithm="random",
        max_rounds=20,
        report_every=5,
        ensemble_size=1,
        row_ladder=True,
        first_rung_rows=1000,
    )
    engine = AutoMLEngine(RayTuneOptimizer(settings), out_dir=tmp_path, track=False)
    spec = dataset_spec(frame, None, "y", out_dir=tmp_path, s3=engine.data_config.s3)
    plan = engine._plan(spec, task=None, resume=False, started=time.monotonic())
    assert len(plan.valid.y) == len(plan.data.y_valid) == 300
    share = frame["y"].mean()
    assert abs(plan.valid.y.mean() - share) < 0.01  # stratified: the classes' shares kept
    assert plan.data.x_train.shape[0] > 9000  # every training row, the ladder's rungs are its prefixes
