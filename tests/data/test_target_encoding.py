"""High-cardinality categoricals: out-of-fold target and frequency encodings fitted in a streaming pass."""

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import ray

from app.config import DataConfig
from app.data import DatasetSpec, Preprocessor, prepare, profile
from app.data.synthetic import write_parquet
from app.data.target_encoding import (
    FOLD,
    FOLDS,
    MAX_LEVELS,
    add_folds,
    fit_encodings,
    high_cardinality,
    level_cap,
    merge_summaries,
)


def _frame(n: int = 600, *, levels: int = 40, seed: int = 0, classes: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    shop = rng.integers(0, levels, n)
    z = np.linspace(-2, 2, levels)[shop] + rng.normal(size=n)
    y = np.digitize(z, np.quantile(z, np.linspace(0, 1, classes + 1)[1:-1]))
    shops = [f"s{v}" for v in shop]
    return pd.DataFrame({"id": np.arange(n), "shop": shops, "x": rng.normal(size=n), "y": y})


def _fitted(frame: pd.DataFrame) -> tuple[Preprocessor, ray.data.Dataset]:
    """The preprocessor ``prepare`` builds, with every level of ``shop`` encoded, and the training rows."""
    ds = add_folds(ray.data.from_pandas(frame), seed=0, key_columns=["id"])
    prof = profile(ds, numeric=["x"], categorical=["shop"], target="y")
    pre = Preprocessor.fit(prof, features=["shop", "x"], categorical=["shop"], target="y", max_categories=4)
    assert high_cardinality(prof, ["shop"], over=4) == ["shop"]
    return pre.with_encodings(fit_encodings(ds, pre, ["shop"])), ds


def _train_rows(ds: ray.data.Dataset) -> pd.DataFrame:
    return ds.to_pandas().sort_values("id").reset_index(drop=True)


def test_a_training_rows_encoding_does_not_use_its_own_label(ray_session):
    frame = _frame()
    pre, ds = _fitted(frame)
    rows = _train_rows(ds)
    flipped = frame.assign(y=np.where(frame["id"] == 7, 1 - frame["y"], frame["y"]))
    pre_flipped, _ = _fitted(flipped)
    before = pre.transform(rows)["shop__te"]
    after = pre_flipped.transform(rows.assign(y=flipped["y"]))["shop__te"]
    assert before[7] == after[7]  # row 7's own value ignores its label, which its level's other folds see
    same_level = (rows["shop"] == rows["shop"][7]) & (rows[FOLD] != rows[FOLD][7])
    assert same_level.any() and np.all(before[same_level] != after[same_level])
    # Rows without a fold (validation, serving) are encoded from every training row: row 7 included.
    served = pre.transform(rows.drop(columns=[FOLD]))["shop__te"]
    assert served[7] != before[7]


def test_the_out_of_fold_value_is_the_smoothed_mean_of_the_other_folds(ray_session):
    pre, ds = _fitted(_frame())
    rows = _train_rows(ds)
    enc = pre.encodings["shop"]
    out = pre.transform(rows)
    for i in (0, 11, 123):
        fold, others = rows[FOLD][i], rows[FOLD] != rows[FOLD][i]
        level = others & (rows["shop"] == rows["shop"][i])
        prior, m = enc["prior"][fold][0], enc["smoothing"][fold]
        assert prior == pytest.approx(rows["y"][others].mean())
        expected = (rows["y"][level].sum() + m * prior) / (level.sum() + m)
        assert out["shop__te"][i] == pytest.approx(expected, rel=1e-5)
        assert out["shop__freq"][i] == pytest.approx((rows["shop"] == rows["shop"][i]).mean(), rel=1e-5)


def test_unseen_levels_get_the_prior_and_nulls_stay_missing(ray_session):
    pre, _ = _fitted(_frame())
    out = pre.transform(pd.DataFrame({"shop": ["never-seen", None, "s3"], "x": [0.0] * 3}), with_target=False)
    prior = pre.encodings["shop"]["prior"][FOLDS][0]
    assert out["shop"][0] == len(pre.categories["shop"])  # CatBoost: the unknown bucket
    assert out["shop__te"][0] == pytest.approx(prior) and out["shop__freq"][0] == 0.0
    assert np.isnan(out["shop__te"][1]) and np.isnan(out["shop__freq"][1]) and np.isnan(out["shop"][1])
    assert out["shop__te"][2] != pytest.approx(prior)


def test_json_round_trip_encodes_identically(ray_session, tmp_path):
    pre, ds = _fitted(_frame())
    again = Preprocessor.load(pre.save(tmp_path / "preprocessor.json"))
    rows = _train_rows(ds)
    for batch in (rows, rows.drop(columns=[FOLD])):
        a, b = pre.transform(batch), again.transform(pa.Table.from_pandas(batch, preserve_index=False))
        assert list(a) == list(b) == [*pre.columns, "__label__"]
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_multiclass_gets_one_target_column_per_class_and_codes_are_numeric_for_xgboost(ray_session):
    pre, ds = _fitted(_frame(classes=4))
    rows = _train_rows(ds).drop(columns=[FOLD])
    assert pre.columns == ["shop", "shop__freq", "shop__te0", "shop__te1", "shop__te2", "shop__te3", "x"]
    assert pre.feature_types == ["q"] * 7 and pre.categorical_features == ["shop"]
    assert pre.encoded_columns == pre.columns[1:6]
    out = pre.transform(rows)
    per_class = np.stack([out[f"shop__te{k}"] for k in range(4)], axis=1)
    np.testing.assert_allclose(per_class.sum(axis=1), 1.0, rtol=1e-5)  # each level's class shares
    for k in range(4):
        assert np.corrcoef(per_class[:, k], rows["y"] == k)[0, 1] > 0.2


def test_regression_encodes_each_levels_mean(ray_session):
    frame = _frame().assign(
        y=lambda f: f["shop"].str[1:].astype(float) + np.random.default_rng(1).normal(size=600)
    )
    pre, ds = _fitted(frame)
    assert pre.task == "regression" and pre.columns == ["shop", "shop__freq", "shop__te", "x"]
    rows = _train_rows(ds).drop(columns=[FOLD])
    out = pre.transform(rows)
    level_means = rows.groupby("shop")["y"].transform("mean").to_numpy()
    assert np.corrcoef(out["shop__te"], level_means)[0, 1] > 0.99
    assert 1.0 <= pre.encodings["shop"]["smoothing"][FOLDS] < 10  # clearly distinct levels: little shrinkage


def test_levels_are_capped_so_that_the_file_stays_bounded():
    assert level_cap(1) == MAX_LEVELS
    assert level_cap(100) * FOLDS * 101 <= 500_000 < (level_cap(100) + 1) * FOLDS * 101


def test_past_the_cap_the_rarest_levels_are_encoded_as_unseen(ray_session):
    frequent = [f"t{i}" for i in range(50) for _ in range(10)]
    rare = [f"r{i:05d}" for i in range(MAX_LEVELS)]
    shops = frequent + rare
    frame = pd.DataFrame(
        {"id": np.arange(len(shops)), "shop": shops, "x": 0.0, "y": np.arange(len(shops)) % 2}
    )
    pre, _ = _fitted(frame)
    kept = pre.categories["shop"]
    assert len(kept) == len(pre.encodings["shop"]["counts"]) == MAX_LEVELS
    assert set(kept[:50]) == set(frequent) and kept[-1] == "r09949"  # ties in text order
    out = pre.transform(pd.DataFrame({"shop": ["r09950", "t3"], "x": [0.0, 0.0]}), with_target=False)
    assert out["shop"][0] == MAX_LEVELS and out["shop__freq"][0] == 0.0
    assert out["shop__te"][0] == pytest.approx(pre.encodings["shop"]["prior"][FOLDS][0])
    assert out["shop__freq"][1] == pytest.approx(10 / len(shops))


def test_merging_summaries_adds_counts_and_keeps_the_most_frequent_levels():
    a = pa.table({"level": ["x", "y", "z"], "fold": [0, 0, 1], "n": [5.0, 1.0, 2.0], "s0": [1.0, 0.0, 2.0]})
    b = pa.table({"level": ["x", "z"], "fold": [0, 1], "n": [1.0, 3.0], "s0": [1.0, 0.0]})
    merged = merge_summaries([a, b], ["level", "fold"], keep_levels=2).sort_by("level").to_pydict()
    assert merged == {"level": ["x", "z"], "fold": [0, 1], "n": [6.0, 5.0], "s0": [2.0, 2.0]}


def test_prepare_encodes_only_columns_over_max_categories(ray_session, tmp_path):
    frame = _frame(levels=300).assign(small=lambda f: np.where(f["x"] > 0, "a", "b"))
    write_parquet(frame, tmp_path / "data", files=2)
    spec = DatasetSpec(uri=str(tmp_path / "data"), target="y", id_column="id")
    data = prepare(spec, config=DataConfig(max_categories=50))
    pre = data.preprocessor
    assert set(pre.encodings) == {"shop"} and "small" in pre.categories
    assert FOLD in data.splits.train.take(1)[0] and FOLD not in data.splits.valid.take(1)[0]
    saved = json.loads(pre.save(tmp_path / "preprocessor.json").read_text())
    assert 50 < len(saved["categories"]["shop"]) == len(saved["encodings"]["shop"]["counts"]) <= 300
