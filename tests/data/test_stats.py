"""The one-pass profile against pandas on the same data, and its JSON round trip."""

import numpy as np
import pandas as pd
import pytest
import ray

from app.data import DatasetProfile, profile


@pytest.fixture
def data() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 5000
    df = pd.DataFrame(
        {
            "x": rng.lognormal(size=n),
            "i": rng.integers(-50, 50, size=n),
            "c": pd.Series(rng.choice(["a", "b", "c", "d"], size=n, p=[0.5, 0.3, 0.15, 0.05]), dtype=object),
            "y": rng.integers(0, 3, size=n),
        }
    )
    df.loc[rng.random(n) < 0.1, "x"] = np.nan
    df.loc[rng.random(n) < 0.05, "c"] = None
    return df


def test_numeric_statistics_match_pandas(ray_session, data):
    ds = ray.data.from_pandas(data).repartition(9)
    prof = profile(ds, numeric=["x", "i"], categorical=["c"], target="y")
    assert prof.num_rows == len(data)
    for col in ("x", "i"):
        got, want = prof[col], data[col]
        assert got.nulls == want.isna().sum()
        assert got.count == want.notna().sum()
        assert got.min == pytest.approx(want.min())
        assert got.max == pytest.approx(want.max())
        assert got.mean == pytest.approx(want.mean(), rel=1e-9)
        assert got.std == pytest.approx(want.std(), rel=1e-9)
        for q in ("0.1", "0.5", "0.9"):
            # KLL rank error ~0.7%: compare ranks, not values.
            rank = (want.dropna() <= got.quantiles[q]).mean()
            assert rank == pytest.approx(float(q), abs=0.02)
        assert got.quantiles["0.0"] == pytest.approx(want.min())
        assert got.quantiles["1.0"] == pytest.approx(want.max())


def test_categorical_counts_match_pandas(ray_session, data):
    ds = ray.data.from_pandas(data).repartition(4)
    prof = profile(ds, numeric=["x"], categorical=["c"], target="y")
    counts = data["c"].value_counts()
    assert prof["c"].top_k == list(zip(counts.index, counts.tolist(), strict=True))
    assert prof["c"].nulls == data["c"].isna().sum()
    assert prof["c"].distinct == 4 and prof["c"].distinct_exact
    # A numeric target gets both moments and class counts (for task inference).
    assert prof["y"].mean == pytest.approx(data["y"].mean())
    assert dict(prof["y"].top_k) == data["y"].value_counts().to_dict()


def test_profile_round_trips_through_json(ray_session, data, tmp_path):
    prof = profile(ray.data.from_pandas(data), numeric=["x", "i"], categorical=["c"], target="y")
    path = prof.save(tmp_path / "run" / "profile.json")
    again = DatasetProfile.load(path)
    assert again == prof


def test_datetime_columns_are_profiled_as_epoch_seconds(ray_session):
    dates = pd.DataFrame({"t": pd.to_datetime(["2024-01-01", "2024-01-02", None]), "y": [0, 1, 0]})
    prof = profile(ray.data.from_pandas(dates), numeric=[], categorical=[], datetime=["t"], target="y")
    assert prof["t"].kind == "datetime"
    assert prof["t"].min == pd.Timestamp("2024-01-01").timestamp()
    assert prof["t"].nulls == 1
