"""bench/portfolio.py: AutoGluon's portfolio layout to this project's (pure logic; the file it made is
checked in tests/search/test_portfolio.py)."""

from __future__ import annotations

import pytest

from bench.portfolio import convert


def test_autogluon_configurations_are_renamed_and_ordered_by_priority():
    autogluon = {
        "GBM": [
            {"extra_trees": True, "ag_args": {"name_suffix": "XT"}},
            {},
            {"learning_rate": 0.03, "min_data_in_leaf": 3, "ag_args": {"name_suffix": "_r1", "priority": -3}},
        ],
        "CAT": [{}, {"depth": 6, "one_hot_max_size": 10, "ag_args": {"name_suffix": "_r2", "priority": -1}}],
        "XGB": [
            {
                "learning_rate": 0.02,
                "enable_categorical": False,
                "ag_args": {"name_suffix": "_r3", "priority": -8},
            }
        ],
        "NN_TORCH": [{"hidden_size": 10, "ag_args": {"priority": 5}}],
    }
    assert [(p["name"], p["family"], p["params"]) for p in convert(autogluon)] == [
        ("LightGBMXT", "lightgbm", {"extra_trees": True}),
        ("CatBoost_r2", "catboost", {"depth": 6}),
        ("LightGBM_r1", "lightgbm", {"learning_rate": 0.03, "min_child_samples": 3}),
        ("XGBoost_r3", "xgboost", {"eta": 0.02}),
    ]


def test_a_parameter_without_a_mapping_is_named_with_its_configuration():
    with pytest.raises(ValueError, match=r"LightGBM_r9: no mapping for \['lambda_l1'\]"):
        convert({"GBM": [{"lambda_l1": 1.0, "ag_args": {"name_suffix": "_r9", "priority": -9}}]})
