"""The learned portfolio (``search.portfolio``): AutoGluon's zeroshot configurations in this project's
parameters, evaluated in order after every family's defaults, each moved into its space for the data."""

from __future__ import annotations

import json

import pytest
from ray.tune.search.optuna import OptunaSearch

from app.learners import learner
from app.search.portfolio import PORTFOLIO, portfolio_points
from app.search.spaces import SEP, OptunaSpace, initial_points

FAMILIES = ["xgboost", "lightgbm", "catboost"]


def _inside(point: dict, n_rows: int) -> None:
    family = point["family"]
    space = learner(family).search_space(n_rows, 10, "binary")[0]
    assert set(point) == {"family"} | {f"{family}{SEP}{p.name}" for p in space}
    for p in space:
        value = point[f"{family}{SEP}{p.name}"]
        if p.kind == "choice":
            assert value in p.choices, (p.name, value)
        else:
            assert p.low <= value <= p.high, (p.name, value)


def test_the_portfolio_names_its_source_and_sets_only_searched_parameters():
    data = json.loads(PORTFOLIO.read_text())
    assert data["made_by"] == "bench/portfolio.py" and data["source"].startswith("autogluon.tabular ")
    priorities = [p["priority"] for p in data["points"]]
    assert priorities == sorted(priorities, reverse=True)
    assert {p["family"] for p in data["points"]} == set(FAMILIES)
    for p in data["points"]:
        searched = {q.name for q in learner(p["family"]).search_space(10**6, 100, "binary")[0]}
        assert p["params"] and set(p["params"]) <= searched, p["name"]


@pytest.mark.parametrize("n_rows", [300, 5_000, 2_000_000])
def test_portfolio_points_come_after_the_defaults_inside_their_spaces(n_rows):
    base = initial_points(FAMILIES, n_rows, 10, "binary")
    points = initial_points(FAMILIES, n_rows, 10, "binary", portfolio=12)
    assert points[: len(base)] == base
    added = points[len(base) :]
    # Twelve, less any that equal a point before them once moved into this data's space.
    assert 6 <= len(added) <= 12
    for point in added:
        _inside(point, n_rows)
    assert len({json.dumps(p, sort_keys=True) for p in points}) == len(points)


def test_portfolio_points_keep_its_order_and_its_values_where_the_space_holds_them():
    n_rows = 2_000_000  # a space wide enough for every learned value but the smallest learning rates
    base = initial_points(FAMILIES, n_rows, 10, "binary")
    added = initial_points(FAMILIES, n_rows, 10, "binary", portfolio=8)[len(base) :]
    expected = portfolio_points(FAMILIES)[:8]
    assert [p["family"] for p in added] == [family for family, _ in expected]
    for point, (family, params) in zip(added, expected, strict=True):
        space = {p.name: p for p in learner(family).search_space(n_rows, 10, "binary")[0]}
        for name, value in params.items():
            assert point[f"{family}{SEP}{name}"] == space[name].clip(value)
        defaults = learner(family).search_space(n_rows, 10, "binary")[1][0]
        for name in set(space) - set(params):  # what a configuration leaves out: the family's defaults
            assert point[f"{family}{SEP}{name}"] == defaults[name]


def test_only_the_searched_families_points_are_added():
    points = initial_points(["catboost"], 5_000, 10, "binary", portfolio=5)
    assert [p["family"] for p in points] == ["catboost"] * 7


def test_optuna_evaluates_the_portfolio_first_then_samples_on_its_own():
    points = initial_points(FAMILIES, 5_000, 10, "binary", portfolio=6)
    search = OptunaSearch(
        space=OptunaSpace(FAMILIES, 5_000, 10, "binary"),
        metric="score",
        mode="min",
        points_to_evaluate=points,
        seed=0,
    )
    proposed = []
    for i in range(len(points) + 6):
        proposed.append(search.suggest(f"t{i}"))
        search.on_trial_complete(f"t{i}", {"score": 0.5 + 0.01 * (i % 4)})
    assert proposed[: len(points)] == points
    for config in proposed[len(points) :]:
        _inside(config, 5_000)
        assert config not in points


def test_a_search_trains_the_portfolio_points_after_the_defaults(ray_session, tmp_path):
    """Through Ray Tune: the defaults, then the portfolio's first points (LightGBM with random
    thresholds, CatBoost's first learned configuration among them), each trained and on the leaderboard."""
    from app.data.synthetic import make_frame
    from app.search import AutoMLEngine, RayTuneOptimizer, RayTuneSettings

    families = ["lightgbm", "catboost"]
    frame = make_frame(1_000, task="binary", seed=3)
    points = initial_points(families, 600, frame.shape[1] - 1, "binary", portfolio=3)
    settings = RayTuneSettings(  # the points take at most half of a bounded search
        families=families,
        portfolio=3,
        num_samples=2 * len(points),
        max_rounds=40,
        cv_folds=0,
        ensemble_size=3,
    )
    result = AutoMLEngine(RayTuneOptimizer(settings), out_dir=tmp_path).fit(
        frame.drop(columns=["y"]), frame["y"]
    )
    board = result.leaderboard
    assert len(board) == 2 * len(points)
    assert "errored" not in set(board.status)
    params = [json.loads(p) for p in board.params]
    assert any(p.get("extra_trees") is True for p in params)
    (cat,) = [p for f, p in portfolio_points(families)[:3] if f == "catboost"][:1]
    assert any(p.get("depth") == cat["depth"] and p.get("l2_leaf_reg") == cat["l2_leaf_reg"] for p in params)
    assert result.model_dir.exists()


def test_by_default_every_point_of_the_searched_families_is_added():
    from app.config import SearchConfig

    assert SearchConfig().portfolio is None
    points = initial_points(["xgboost"], 2_000_000, 10, "binary", portfolio=None)
    assert len(points) == 2 + len(portfolio_points(["xgboost"]))


def test_a_search_bounded_by_a_trial_count_gives_the_points_at_most_half_of_it():
    base = initial_points(FAMILIES, 5_000, 10, "binary")  # defaults and slower points: 6
    assert len(initial_points(FAMILIES, 5_000, 10, "binary", portfolio=None, trials=30)) == 15
    assert len(initial_points(FAMILIES, 5_000, 10, "binary", portfolio=4, trials=30)) == 10
    # Fewer trials than the defaults: the defaults all the same, no portfolio point.
    assert initial_points(FAMILIES, 5_000, 10, "binary", portfolio=None, trials=8) == base
    unbounded = initial_points(FAMILIES, 5_000, 10, "binary", portfolio=None, trials=None)
    assert len(unbounded) > 40  # a search ended by its time budget keeps every point
