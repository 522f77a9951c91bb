"""DaskOnRayLoader: Dask results computed on Ray match pandas on the same small multi-file data."""

from __future__ import annotations

import io
import os

import dask
import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from app.data.dask_loader import DaskDataLoader, DaskOnRayLoader
from app.data.errors import DataError, DataTooLargeError
from app.data.filesystem import S3Options

N_FILES = 3


def _frame(n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.integers(-3, 10, size=n),
            "g": rng.choice(["red", "green", "blue"], size=n),
            "target": rng.integers(0, 2, size=n),
        }
    )


def _parts(pdf: pd.DataFrame) -> list[pd.DataFrame]:
    bounds = np.linspace(0, len(pdf), N_FILES + 1).astype(int)
    return [pdf.iloc[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[pd.DataFrame, str]:
    """The frame and a directory holding it as one Parquet file per third."""
    pdf = _frame()
    root = tmp_path_factory.mktemp("parquet")
    for i, part in enumerate(_parts(pdf)):
        part.to_parquet(root / f"part-{i}.parquet", index=False)
    return pdf, str(root)


@pytest.fixture
def loader(ray_session) -> DaskOnRayLoader:
    return DaskOnRayLoader()


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    """As Dask returns it: index reset, and strings as ``string[pyarrow]`` (pd.NA), not pandas 3's ``str``."""
    strings = {c: pd.StringDtype("pyarrow") for c in df.columns if pd.api.types.is_string_dtype(df[c])}
    return df.reset_index(drop=True).astype(strings)


def test_filter_derived_column_and_groupby_match_pandas(loader, data):
    pdf, root = data
    ddf = loader.load_parquet(f"{root}/*.parquet")
    ddf = ddf[ddf["a"] > 0]
    ddf["ab"] = ddf["a"] * ddf["b"]
    expected = _plain(pdf[pdf["a"] > 0])
    expected["ab"] = expected["a"] * expected["b"]

    pdt.assert_frame_equal(_plain(loader.compute(ddf)), expected)
    pdt.assert_frame_equal(
        loader.compute(ddf.groupby("g").agg({"ab": "sum", "b": "max"})).sort_index(),
        expected.groupby("g").agg({"ab": "sum", "b": "max"}).sort_index(),
    )


def test_computation_runs_as_ray_tasks_in_worker_processes(loader, data):
    _, root = data

    def where(part: pd.DataFrame) -> pd.DataFrame:
        import ray

        return pd.DataFrame({"pid": [os.getpid()], "task_id": [ray.get_runtime_context().get_task_id()]})

    ddf = loader.load_parquet(root)
    seen = loader.compute(ddf.map_partitions(where, meta={"pid": "int64", "task_id": "object"}))

    assert len(seen) == ddf.npartitions
    assert seen["task_id"].notna().all()
    assert os.getpid() not in set(seen["pid"])


def test_compute_leaves_the_global_dask_scheduler_unset(loader, data):
    before = dask.config.get("scheduler", None)

    loader.compute(loader.load_parquet(data[1])["a"].sum())

    assert dask.config.get("scheduler", None) == before


def test_sample_is_about_the_fraction_and_the_same_for_a_seed(loader, data):
    pdf, root = data
    ddf = loader.load_parquet(root)

    first = loader.compute(loader.sample(ddf, 0.25, seed=3))
    again = loader.compute(loader.sample(ddf, 0.25, seed=3))
    other = loader.compute(loader.sample(ddf, 0.25, seed=4))

    assert abs(len(first) - 0.25 * len(pdf)) <= N_FILES
    pdt.assert_frame_equal(first, again)
    assert not first.equals(other)


@pytest.mark.parametrize("frac", [0, -0.1, 1.5])
def test_sample_rejects_a_fraction_outside_zero_to_one(data, frac):
    loader = DaskOnRayLoader()
    ddf = loader.load_parquet(data[1])
    with pytest.raises(ValueError, match="frac"):
        loader.sample(ddf, frac)


def test_to_ray_dataset_holds_the_same_rows(loader, data):
    pdf, root = data
    ddf = loader.load_parquet(root, columns=["a", "b", "target"])

    ds = loader.to_ray_dataset(ddf)

    assert ds.count() == len(pdf)
    got = ds.to_pandas().sort_values("a", ignore_index=True)
    pdt.assert_frame_equal(got, pdf[["a", "b", "target"]].sort_values("a", ignore_index=True))


def test_persist_keeps_partitions_on_ray_and_computes_the_same(loader, data):
    pdf, root = data
    ddf = loader.load_parquet(root)

    persisted = loader.persist(ddf[ddf["b"] > 2])

    pdt.assert_frame_equal(_plain(loader.compute(persisted)), _plain(pdf[pdf["b"] > 2]))


def test_to_numpy_returns_the_arrays_pandas_would(loader, data):
    pdf, root = data
    ddf = loader.load_parquet(root)

    X, y = loader.to_numpy(ddf, target_col="target", feature_cols=["b", "a"])

    np.testing.assert_array_equal(X, pdf[["b", "a"]].to_numpy())
    np.testing.assert_array_equal(y, pdf["target"].to_numpy())
    assert X.shape == (len(pdf), 2) and y.shape == (len(pdf),)


def test_to_sklearn_arrays_takes_every_other_column_by_default(loader, data):
    pdf, root = data
    ddf = loader.load_parquet(root, columns=["a", "b", "target"])

    X, y = DaskDataLoader.to_sklearn_arrays(loader, ddf, target_col="target")

    np.testing.assert_array_equal(X, pdf[["a", "b"]].to_numpy())
    np.testing.assert_array_equal(y, pdf["target"].to_numpy())


def test_to_numpy_over_the_memory_limit_raises_with_estimate_and_limit(ray_session, data):
    pdf, root = data
    loader = DaskOnRayLoader(memory_limit_bytes=1000)
    ddf = loader.load_parquet(root, columns=["a", "b", "target"])

    with pytest.raises(DataTooLargeError) as info:
        loader.to_numpy(ddf, target_col="target")

    message = str(info.value)
    assert f"{len(pdf) * 3 * 8:,} bytes" in message  # three 8-byte columns per row
    assert "limit of 1,000 bytes" in message


@pytest.mark.parametrize(
    ("target", "features", "missing"), [("nope", None, "nope"), ("target", ["a", "zz"], "zz")]
)
def test_to_numpy_names_a_missing_column(data, target, features, missing):
    loader = DaskOnRayLoader()
    ddf = loader.load_parquet(data[1])

    with pytest.raises(DataError) as info:
        loader.to_numpy(ddf, target_col=target, feature_cols=features)

    assert info.value.column == missing
    assert repr(missing) in str(info.value)


@pytest.mark.parametrize("suffix", ["missing-dir", "missing-dir/*.parquet", "*.nothing"])
def test_load_parquet_names_a_missing_path(data, suffix):
    uri = f"{data[1]}/{suffix}"

    with pytest.raises(DataError) as info:
        DaskOnRayLoader().load_parquet(uri)

    assert info.value.path == uri


def test_load_csv_matches_pandas(loader, data, tmp_path):
    pdf, _ = data
    for i, part in enumerate(_parts(pdf)):
        part.to_csv(tmp_path / f"part-{i}.csv", index=False)

    ddf = loader.load_csv(str(tmp_path / "*.csv"))

    pdt.assert_frame_equal(_plain(loader.compute(ddf)), _plain(pdf), check_exact=False)


def test_constructing_a_loader_does_not_connect_to_ray():
    loader = DaskOnRayLoader(ray_address="ray://127.0.0.1:1", memory_limit_bytes=5)
    assert loader.memory_limit_bytes == 5


@pytest.mark.s3
def test_load_parquet_from_s3_through_moto(ray_session, s3_endpoint, s3_bucket, monkeypatch):
    pdf = _frame(90)
    client = s3_endpoint.client()
    for i, part in enumerate(_parts(pdf)):
        body = io.BytesIO()
        part.to_parquet(body, index=False)
        client.put_object(Bucket=s3_bucket, Key=f"huge/part-{i}.parquet", Body=body.getvalue())
    for key, value in s3_endpoint.env().items():
        monkeypatch.setenv(key, value)
    # Workers started before the test lack the credentials; a runtime_env gives them those of moto.
    loader = DaskOnRayLoader(
        s3=S3Options(endpoint_url=s3_endpoint.endpoint_url, region="us-east-1"),
        ray_remote_args={"runtime_env": {"env_vars": s3_endpoint.env()}},
    )

    ddf = loader.load_parquet(f"s3://{s3_bucket}/huge/*.parquet", columns=["a", "target"])
    ddf = ddf[ddf["a"] > 0]

    expected = pdf.loc[pdf["a"] > 0, ["a", "target"]]
    pdt.assert_frame_equal(_plain(loader.compute(ddf)), _plain(expected))
    with pytest.raises(DataError):
        loader.load_parquet(f"s3://{s3_bucket}/absent/*.parquet")
