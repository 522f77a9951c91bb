"""Search spaces: initial points inside their spaces, tried family by family (pure logic, no Ray)."""

from __future__ import annotations

import pytest

from app.learners import Param, learner, names
from app.search.spaces import SEP, initial_points


@pytest.mark.parametrize("n_rows", [300, 600, 5_000, 50_000, 2_000_000])
@pytest.mark.parametrize("family", sorted(names()))
def test_initial_points_lie_inside_their_space(family: str, n_rows: int) -> None:
    space, points = learner(family).search_space(n_rows, 10, "binary")
    bounds = {p.name: p for p in space}
    assert len(points) == 2
    for point in points:
        assert set(point) == set(bounds)
        for name, value in point.items():
            assert bounds[name].clip(value) == value, (name, value)


def test_initial_points_give_every_family_its_defaults_first() -> None:
    points = initial_points(["xgboost", "lightgbm", "catboost"], 1_000, 10, "binary")
    assert [p["family"] for p in points] == ["xgboost", "lightgbm", "catboost"] * 2
    defaults, slower = points[:3], points[3:]
    rates = {"xgboost": "eta", "lightgbm": "learning_rate", "catboost": "learning_rate"}
    for first, second in zip(defaults, slower, strict=True):
        family = first["family"]
        key = f"{family}{SEP}{rates[family]}"
        assert second[key] < first[key]
        assert all(k == "family" or k.startswith(family + SEP) for k in first)


def test_a_value_is_moved_into_its_parameter_range():
    assert Param("n", "logint", 4, 64).clip(252.4) == 64
    assert Param("n", "int", 4, 64).clip(9.6) == 10
    assert Param("r", "logfloat", 0.01, 0.3).clip(0.005) == 0.01
    assert Param("g", "choice", choices=("a", "b")).clip("b") == "b"
    assert Param("g", "choice", choices=("a", "b")).clip("c") is None


@pytest.mark.parametrize(
    ("family", "name", "value"),
    [
        (family, p.name, value)
        for family in sorted(names())
        for p in learner(family).search_space(1_000, 10, "binary")[0]
        if p.kind == "choice"
        for value in p.choices
    ],
)
def test_every_choice_of_a_space_trains_and_keeps_its_best_round(family, name, value):
    """A trial keeps its best round by truncating its model: each searched choice must allow it
    (CatBoost truncates symmetric trees only, so its grow_policy is not searched)."""
    from app.search.inprocess import train_local
    from tests.search.test_cv import _data

    defaults = learner(family).search_space(1_000, 10, "binary")[1][0]
    # A high learning rate on noisy rows: the validation score peaks early and early stopping cuts.
    params = {**defaults, name: value, "learning_rate" if family != "xgboost" else "eta": 0.5}
    result = train_local(family, params, _data(600, classes=2), num_boost_round=200, early_stopping_rounds=5)
    assert 1 <= result.num_rounds < 200
