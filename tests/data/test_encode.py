"""The preprocessor: stable codes, the unknown bucket, high cardinality, task inference, JSON round trip."""

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import ray

from app.data import LABEL, DataError, Preprocessor, infer_task, profile


def _fit(frame: pd.DataFrame, *, categorical, target="y", max_categories=256, **kw) -> Preprocessor:
    ds = ray.data.from_pandas(frame)
    numeric = [c for c in frame.columns if c not in categorical and c != target]
    prof = profile(ds, numeric=numeric, categorical=categorical, target=target)
    features = [c for c in frame.columns if c != target]
    return Preprocessor.fit(
        prof, features=features, categorical=categorical, target=target, max_categories=max_categories, **kw
    )


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": [1.0, None, 3.0, 4.0, 5.0, 6.0],
            "c": pd.Series(["b", "a", None, "a", "a", "b"], dtype=object),
            "y": ["no", "yes", "no", "no", "yes", "yes"],
        }
    )


def test_codes_follow_frequency_and_unseen_levels_share_the_unknown_bucket(ray_session, frame):
    pre = _fit(frame, categorical=["c"])
    assert pre.categories == {"c": ["a", "b"]}
    out = pre.transform(
        pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "zzz", None], "y": ["no", "yes", "no"]})
    )
    assert out["c"][:2].tolist() == [0.0, 2.0]  # "zzz" -> unknown bucket len(levels)
    assert np.isnan(out["c"][2])  # null stays missing
    assert out[LABEL].tolist() == [0.0, 1.0, 0.0]
    assert all(v.dtype == np.float32 for v in out.values())


def test_json_round_trip_transforms_identically(ray_session, frame, tmp_path):
    pre = _fit(frame, categorical=["c"])
    path = pre.save(tmp_path / "preprocessor.json")
    assert json.loads(path.read_text())["classes"] == ["no", "yes"]
    again = Preprocessor.load(path)
    a, b = pre.transform(frame), again.transform(pa.Table.from_pandas(frame, preserve_index=False))
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_high_cardinality_keeps_the_most_frequent_levels(ray_session):
    rng = np.random.default_rng(0)
    values = [f"v{int(i)}" for i in rng.zipf(1.5, size=3000) % 500]
    frame = pd.DataFrame({"c": values, "y": rng.integers(0, 2, 3000)})
    pre = _fit(frame, categorical=["c"], max_categories=10)
    top = frame["c"].value_counts().index[:10].tolist()
    assert pre.categories["c"] == top
    codes = pre.transform(frame)["c"]
    assert set(np.unique(codes)) <= set(range(11))
    assert (codes == 10).sum() == (~frame["c"].isin(top)).sum()


def test_integer_categories_and_boolean_target_match_in_their_own_type(ray_session):
    frame = pd.DataFrame({"zip": [75001, 69001, 75001, 13001], "y": [True, False, True, False]})
    pre = _fit(frame, categorical=["zip"])
    out = pre.transform(frame)
    assert out["zip"].tolist() == [0.0, 1.0, 0.0, 2.0] or out["zip"].tolist() == [0.0, 2.0, 0.0, 1.0]
    assert pre.classes == [False, True]
    np.testing.assert_array_equal(pre.decode_labels(out[LABEL]), frame["y"].to_numpy())


def test_rows_with_null_target_are_dropped_and_unseen_classes_refused(ray_session, frame):
    pre = _fit(frame, categorical=["c"])
    with_null = frame.assign(y=["no", None, "yes", "no", "no", "yes"])
    assert len(pre.transform(with_null)[LABEL]) == 5
    with pytest.raises(DataError, match="classes not seen"):
        pre.transform(frame.assign(y=["maybe"] * 6))


def test_missing_column_is_named(ray_session, frame):
    pre = _fit(frame, categorical=["c"])
    with pytest.raises(DataError, match="column 'x'"):
        pre.transform(frame.drop(columns=["x"]))
    assert set(pre.transform(frame.drop(columns=["y"]), with_target=False)) == {"x", "c"}


def test_task_inference(ray_session):
    rng = np.random.default_rng(1)
    cases = {
        "binary": rng.integers(0, 2, 200),
        "multiclass": rng.integers(0, 5, 200),
        "regression": rng.normal(size=200),
    }
    for task, y in cases.items():
        prof = profile(ray.data.from_pandas(pd.DataFrame({"y": y})), numeric=[], categorical=[], target="y")
        assert infer_task(prof, "y") == task
    constant = profile(
        ray.data.from_pandas(pd.DataFrame({"y": [1] * 10})), numeric=[], categorical=[], target="y"
    )
    with pytest.raises(DataError, match="nothing to learn"):
        infer_task(constant, "y")


def test_dates_give_epoch_seconds_and_calendar_parts_with_nulls_kept():
    pre = Preprocessor(features=["d", "x"], categories={}, datetime=["d"], target=None, task=None)
    assert pre.columns == [
        "d", "d__dayofweek", "d__month", "d__day", "d__dayofyear", "d__hour", "x"
    ]  # fmt: skip
    stamps = pa.array(
        [pd.Timestamp("2024-01-06 13:05"), None, pd.Timestamp("2024-12-31 00:00")], pa.timestamp("ms")
    )
    out = pre.transform(pa.table({"d": stamps, "x": [1.0, 2.0, 3.0]}), with_target=False)
    assert list(out) == pre.columns
    assert out["d"][0] == pytest.approx(pd.Timestamp("2024-01-06 13:05").timestamp())
    assert out["d__dayofweek"].tolist()[::2] == [5.0, 1.0]  # Saturday, Tuesday (Monday = 0)
    assert out["d__month"].tolist()[::2] == [1.0, 12.0]
    assert out["d__day"].tolist()[::2] == [6.0, 31.0]
    assert out["d__dayofyear"].tolist()[::2] == [6.0, 366.0]  # 2024 is a leap year
    assert out["d__hour"].tolist()[::2] == [13.0, 0.0]
    assert all(np.isnan(out[c][1]) for c in pre.columns if c != "x")
    dates = pa.array([pd.Timestamp("2024-03-01").date()], pa.date32())
    from_dates = pre.transform(pa.table({"d": dates, "x": [0.0]}), with_target=False)
    assert from_dates["d__month"].tolist() == [3.0] and from_dates["d__hour"].tolist() == [0.0]
    with pytest.raises(DataError, match="cannot read string as a date/time") as err:
        pre.transform(pa.table({"d": ["not a date"], "x": [0.0]}), with_target=False)
    assert err.value.column == "d"


def test_numbers_of_every_arrow_type_become_float32_with_nulls_as_nan():
    from app.data.encode import _to_float32

    cases = {
        "float64 with a null": (pa.chunked_array([[1.5, None], [2.5]]), [1.5, np.nan, 2.5]),
        "int64 with a null": (pa.chunked_array([[1, None, 3]]), [1.0, np.nan, 3.0]),
        "int8": (pa.chunked_array([pa.array([-2, 7], pa.int8())]), [-2.0, 7.0]),
        "bool": (pa.chunked_array([[True, False, None]]), [1.0, 0.0, np.nan]),
        "no chunks": (pa.chunked_array([], pa.float64()), []),
    }
    for name, (column, expected) in cases.items():
        got = _to_float32(column)
        assert got.dtype == np.float32, name
        np.testing.assert_array_equal(got, np.asarray(expected, dtype=np.float32), err_msg=name)


def test_a_few_rows_convert_together_exactly_as_a_large_batch_column_by_column():
    """Served requests take ``_small_float_block`` (one Arrow call for the plain numeric features);
    training batches the per-column path. Both give the same float32 values, nulls as NaN, and the
    other features (dates, categories) keep their own encoding."""
    from app.data.encode import SMALL_ROWS

    pre = Preprocessor(
        features=["a", "b", "c", "city", "d"],
        categories={"city": ["paris", "nice"]},
        datetime=["d"],
        target=None,
        task=None,
    )
    rng = np.random.default_rng(0)
    n = SMALL_ROWS + 1
    table = pa.table(
        {
            "a": pa.array(rng.normal(size=n)),
            "b": pa.array([None if i % 3 == 0 else float(i) for i in range(n)], pa.float64()),
            "c": pa.array(rng.normal(size=n).astype(np.float32)),  # float32 beside float64
            "city": pa.array(["paris", "lyon", None] * (n // 3) + ["nice"] * (n % 3)),
            "d": pa.array([pd.Timestamp("2024-01-06")] * n, pa.timestamp("ms")),
        }
    )
    large = pre.transform(table, with_target=False)
    small = pre.transform(table.slice(0, 7), with_target=False)
    assert list(small) == list(large) == pre.columns
    for name in pre.columns:
        assert small[name].dtype == np.float32, name
        np.testing.assert_array_equal(small[name], large[name][:7], err_msg=name)
    ints = pre.transform(table.slice(0, 3).set_column(0, "a", pa.array([1, 2, None])), with_target=False)
    np.testing.assert_array_equal(ints["a"], np.asarray([1.0, 2.0, np.nan], dtype=np.float32))
