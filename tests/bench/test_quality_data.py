"""The generated datasets of bench/quality.py, built small: a broken builder fails here, not an hour into
the benchmark. No Ray, no fitting."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from _quality_data import DATASETS, DEFAULT, TARGET, by_name, load  # noqa: E402
from _quality_report import summarize  # noqa: E402

# name: (rows to build, columns with the target, classes or None, positive share or None,
#        {column: level count}, columns with missing values, id columns, date columns)
EXPECTED = {
    "synth_binary": (2_000, 11, 2, 0.07, {}, ["num1", "num3", "region"], [], ["event_date"]),
    "synth_multiclass": (2_000, 11, 4, None, {}, ["num1", "num3", "region"], [], ["event_date"]),
    "synth_regression": (2_000, 11, None, None, {}, ["num1", "num3", "region"], [], ["event_date"]),
    "merchant_fraud": (
        6_000, 12, 2, 0.04, {"merchant": 5_000, "merchant_category": 20},
        ["card_age_days", "country", "f3"], [], ["txn_date"],
    ),
    "cover_multiclass": (3_000, 55, 7, None, {}, [], [], []),
    "customer_churn": (
        3_000, 15, 2, 0.03, {"plan": 4}, ["country", "discount_rate"],
        ["customer_id", "account_number"], ["signup_date", "last_order_date"],
    ),
    "insurance_claims": (
        3_000, 11, None, None, {"vehicle_make": 150}, ["driver_age", "vehicle_value"], ["policy_id"],
        ["policy_start"],
    ),
    "ad_clicks": (
        25_000, 11, 2, 0.08, {"publisher": 20_000, "publisher_category": 25, "device": 4},
        ["country", "user_age_days", "f1"], [], [],
    ),
    "wave_multiclass": (3_000, 49, 7, None, {}, [], [], []),
}  # fmt: skip


def test_every_generated_dataset_has_expectations_and_the_default_run_has_ten():
    assert {d.name for d in DATASETS if d.generated} == set(EXPECTED)
    assert len(DEFAULT) >= 10


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_generated_dataset_has_its_shape_types_levels_missing_values_and_ids(name, tmp_path):
    rows, width, classes, positives, levels, missing, ids, dates = EXPECTED[name]
    frame = load(name, seed=0, cache=tmp_path, rows=rows)

    assert frame.shape == (rows, width)
    y = frame[TARGET]
    if classes is None:
        assert y.dtype == np.float64
    else:
        assert y.dtype == np.int64 and y.nunique() == classes
        shares = y.value_counts(normalize=True)
        assert shares.min() < 0.5 * shares.max(), f"{name}: classes should be unequal"
    if positives is not None:
        assert y.mean() == pytest.approx(positives, abs=0.005)
    for column, count in levels.items():
        assert frame[column].nunique() == count, column
    assert [c for c in frame.columns if frame[c].isna().any()] == missing
    for column in ids:
        assert frame[column].is_unique, column
    for column in dates:
        assert pd.api.types.is_datetime64_any_dtype(frame[column]), column


def test_id_columns_carry_no_signal():
    churn = by_name("customer_churn").build(rows=5_000, seed=0)
    assert abs(churn["account_number"].corr(churn[TARGET], method="spearman")) < 0.05


def test_claim_cost_is_heavy_tailed():
    cost = by_name("insurance_claims").build(rows=5_000, seed=0)[TARGET]
    assert cost.min() > 0 and cost.skew() > 3 and cost.max() > 20 * cost.median()


def test_generated_dataset_is_seeded_and_written_to_parquet_once(tmp_path):
    first = load("customer_churn", seed=3, cache=tmp_path, rows=500)
    (written,) = tmp_path.glob("*.parquet")
    mtime = written.stat().st_mtime_ns
    again = load("customer_churn", seed=3, cache=tmp_path, rows=500)
    pd.testing.assert_frame_equal(first, again)
    assert written.stat().st_mtime_ns == mtime
    assert not load("customer_churn", seed=4, cache=tmp_path, rows=500).equals(first)


def test_summary_takes_the_median_over_seeds_and_the_worst_ratio_to_the_best_peer_per_budget():
    splits = [
        {"name": "a", "task": "binary", "rows": 10},
        {"name": "b", "task": "regression", "rows": 10},
    ]
    main = {
        "a": {
            "project": {
                0: {"scores": {"auc": 0.9}, "wall_s": 100.0},
                1: {"scores": {"auc": 0.7}, "wall_s": 130.0},
                2: {"scores": {"auc": 0.85}, "wall_s": 90.0},
            },
            "flaml": {0: {"scores": {"auc": 0.8}, "wall_s": 125.0}},
            "autogluon": {0: {"scores": {"auc": 0.95}, "wall_s": 60.0}},
        },
        "b": {
            "project": {0: {"scores": {"rmse": 2.0}, "wall_s": 110.0}, 1: {"error": "boom"}},
            "flaml": {0: {"scores": {"rmse": 1.0}, "wall_s": 140.0}},
            "autogluon": {0: {"error": "boom"}},
        },
    }
    short = {
        "a": {
            "project": {0: {"scores": {"auc": 0.8}, "wall_s": 30.0}},
            "flaml": {0: {"scores": {"auc": 0.8}, "wall_s": 31.0}},
            "autogluon": {0: {"scores": {"auc": 0.7}, "wall_s": 20.0}},
        },
        "b": {"project": {}, "flaml": {}, "autogluon": {}},
    }
    figures, details = summarize(
        splits, {120.0: main, 30.0: short}, ["project", "flaml", "autogluon"], [120.0, 30.0]
    )

    assert figures["n"] == 2
    assert figures["ratio"] == pytest.approx((0.85 / 0.8 + 0.5) / 2, abs=1e-4)
    b120, b30 = figures["b120"], figures["b30"]
    assert b120["worst_ratio"] == pytest.approx(
        {"project": 0.5, "flaml": 0.8 / 0.95, "autogluon": 1.0}, abs=1e-4
    )
    assert b120["worst_dataset"] == {"project": "b", "flaml": "a", "autogluon": "a"}
    assert (b120["at_least_flaml"], b120["compared_flaml"]) == (1, 2)
    assert (b120["at_least_autogluon"], b120["compared_autogluon"]) == (0, 1)
    assert b120["max_over_budget"] == pytest.approx(
        {"project": 130 / 120 - 1, "flaml": 140 / 120 - 1, "autogluon": 60 / 120 - 1}, abs=1e-4
    )
    assert b120["over_budget_runs"] == ["flaml:b:seed0:140.0s"]
    assert b120["failed"] == ["project:b:seed1", "autogluon:b:seed0"]
    assert b120["seeds"] == {"project": [0, 1, 2], "flaml": [0], "autogluon": [0]}
    assert b30["worst_ratio"] == pytest.approx({"project": 1.0, "flaml": 1.0, "autogluon": 0.875}, abs=1e-4)
    assert (b30["at_least_flaml"], b30["compared_flaml"]) == (1, 1)
    assert b30["max_over_budget"]["flaml"] == pytest.approx(31 / 30 - 1, abs=1e-4)
    assert figures["over_budget"] and figures["failed"] == ["b120:project:b:seed1", "b120:autogluon:b:seed0"]
    assert details["b120"]["a"]["project"]["median"] == pytest.approx(0.85)
    assert details["b120"]["a"]["project"]["seeds"]["1"]["scores"] == {"auc": 0.7}


def test_a_project_variant_writes_its_settings_over_the_seed_and_cores():
    import argparse

    import yaml
    from quality import parse_settings, project_config

    parser = argparse.ArgumentParser()
    extra = parse_settings(["search.family_fairness=true", "search.reduction_factor=4"], parser)
    assert extra == {"search": {"family_fairness": True, "reduction_factor": 4}}
    config = yaml.safe_load(project_config(2, 2, 8, extra))
    assert config == {
        "search": {"seed": 2, "family_fairness": True, "reduction_factor": 4},
        "ray": {"num_cpus": 2},
    }
    assert yaml.safe_load(project_config(0, 2, 2, {})) == {"search": {"seed": 0}}  # all the machine's cores
    with pytest.raises(SystemExit):
        parse_settings(["family_fairness=true"], parser)


def test_the_variants_config_is_a_valid_app_config(tmp_path):
    from quality import project_config

    from app.config import AppConfig

    path = tmp_path / "config.yaml"
    path.write_text(project_config(1, 2, 2, {"search": {"family_fairness": True}}))
    assert AppConfig.from_yaml(path, env={}).search.family_fairness is True
