"""Dask DataFrames over local or S3 Parquet/CSV whose tasks run on the Ray cluster (Dask on Ray).

Build lazy frames with ``load_parquet``/``load_csv``, transform them with the Dask API, then bring them
to pandas, NumPy (guarded by a memory limit) or a Ray Dataset; every computation is a Ray task.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Mapping
from typing import Any

import dask
import dask.dataframe as dd
import fsspec
import numpy as np
import pandas as pd
import ray

from app.data.errors import DataError, DataTooLargeError
from app.data.filesystem import S3Options, is_s3

_GLOB_CHARS = frozenset("*?[")


class DaskOnRayLoader:
    """Loads data as Dask DataFrames and executes them on Ray through ``ray.util.dask``.

    Ray is connected on the first computation (``ray.init(address=ray_address)`` unless already
    initialised); loading only reads file metadata on the driver.

    Args:
        ray_address: Cluster to connect to; None starts or joins a local Ray (``RAY_ADDRESS`` applies).
        memory_limit_bytes: Largest selection ``to_numpy`` brings onto this process.
        s3: Endpoint and region for ``s3://`` URIs; credentials come from the environment of the
            driver and of the Ray workers (instance profile, worker env), never from here.
        ray_remote_args: Ray task options for every Dask task (``num_cpus``, ``resources``,
            ``runtime_env``), e.g. to give workers environment variables the cluster lacks.

    Example:
        >>> loader = DaskOnRayLoader(s3=S3Options(region="eu-west-1"))  # doctest: +SKIP
        >>> ddf = loader.load_parquet("s3://bucket/huge/*.parquet")  # doctest: +SKIP
        >>> ddf = ddf[ddf["a"] > 0]  # doctest: +SKIP
        >>> X, y = loader.to_numpy(ddf, target_col="target")  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        ray_address: str | None = None,
        memory_limit_bytes: int = 2 * 1024**3,
        s3: S3Options | None = None,
        ray_remote_args: Mapping[str, Any] | None = None,
    ):
        self.ray_address = ray_address
        self.memory_limit_bytes = memory_limit_bytes
        self.s3 = s3 or S3Options()
        self.ray_remote_args = dict(ray_remote_args or {})

    def load_parquet(
        self, uri: str | list[str], *, columns: list[str] | None = None, filters: Any = None
    ) -> dd.DataFrame:
        """A lazy frame over Parquet files: a file, a directory, a glob or a list of them.

        Raises:
            DataError: A path that does not exist or a glob that matches nothing.
        """
        options = self._storage_options(uri)
        self._check_exists(uri, options)
        with _missing_path_as_data_error(uri):
            return dd.read_parquet(uri, columns=columns, filters=filters, storage_options=options)

    def load_csv(self, uri: str | list[str], **read_csv_kwargs: Any) -> dd.DataFrame:
        """A lazy frame over CSV files; ``read_csv_kwargs`` go to ``dask.dataframe.read_csv``.

        Raises:
            DataError: A path that does not exist or a glob that matches nothing.
        """
        options = self._storage_options(uri)
        self._check_exists(uri, options)
        with _missing_path_as_data_error(uri):
            return dd.read_csv(uri, storage_options=options, **read_csv_kwargs)

    def compute(self, ddf: dd.DataFrame | dd.Series) -> pd.DataFrame | pd.Series:
        """Execute ``ddf`` as Ray tasks and return the pandas result on this process."""
        with self._on_ray():
            return ddf.compute()

    def persist(self, ddf: dd.DataFrame) -> dd.DataFrame:
        """Execute ``ddf`` on Ray and keep its partitions in the Ray object store.

        The returned frame's graph holds Ray object refs: compute it through this loader (or another
        Ray scheduler); Dask's own schedulers would hand back the refs instead of the data.
        """
        with self._on_ray():
            (persisted,) = dask.persist(ddf, ray_persist=True)
        return persisted

    def sample(self, ddf: dd.DataFrame, frac: float, *, seed: int = 0) -> dd.DataFrame:
        """A lazy random sample of about ``frac`` of the rows, the same for the same seed and data.

        Raises:
            ValueError: ``frac`` outside (0, 1].
        """
        if not 0 < frac <= 1:
            raise ValueError(f"frac must be in (0, 1], got {frac}")
        return ddf.sample(frac=frac, random_state=seed)

    def to_ray_dataset(self, ddf: dd.DataFrame) -> ray.data.Dataset:
        """A materialized Ray Dataset with one block per partition of ``ddf``."""
        # Persisting first runs the work with this loader's remote args; from_dask then only wraps refs.
        return ray.data.from_dask(self.persist(ddf))

    def to_numpy(
        self, ddf: dd.DataFrame, *, target_col: str, feature_cols: list[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Features ``X`` and target ``y`` as in-memory arrays, after checking they fit the limit.

        The size is estimated on Ray (rows × bytes per row of the selected columns) before anything is
        gathered, so the data is read twice: once to measure, once to convert.

        Args:
            ddf: The frame to convert.
            target_col: Column of ``y``.
            feature_cols: Columns of ``X`` in this order; None takes every other column.

        Raises:
            DataError: ``target_col`` or a feature column is not in ``ddf``.
            DataTooLargeError: The estimate exceeds ``memory_limit_bytes``.
        """
        columns = list(ddf.columns)
        if target_col not in columns:
            raise DataError(f"target column not found; columns are {columns}", column=target_col)
        if feature_cols is None:
            feature_cols = [c for c in columns if c != target_col]
        for col in feature_cols:
            if col not in columns:
                raise DataError(f"feature column not found; columns are {columns}", column=col)
        selected = ddf[[*feature_cols, target_col]]
        sizes = self.compute(selected.map_partitions(_partition_size, meta=_SIZE_META))
        rows, total = int(sizes["rows"].sum()), int(sizes["bytes"].sum())
        if total > self.memory_limit_bytes:
            per_row = total / rows if rows else 0.0
            raise DataTooLargeError(
                f"estimated {total:,} bytes in memory ({rows:,} rows x {per_row:,.0f} bytes per row "
                f"of {len(feature_cols) + 1} columns) exceeds the limit of {self.memory_limit_bytes:,} "
                "bytes; filter, sample or select columns first, or use to_ray_dataset"
            )
        frame = self.compute(selected)
        return frame[feature_cols].to_numpy(), frame[target_col].to_numpy()

    to_sklearn_arrays = to_numpy

    @contextlib.contextmanager
    def _on_ray(self) -> Iterator[None]:
        # Imported here: importing ray.util.dask patches dask.persist process-wide.
        from ray.util.dask import ray_dask_get

        if not ray.is_initialized():
            from app.cluster import connect
            from app.config import RayConfig

            connect(RayConfig(address=self.ray_address))
        scheduler = functools.partial(ray_dask_get, ray_remote_args=self.ray_remote_args)
        with dask.config.set(scheduler=scheduler):
            yield

    def _storage_options(self, uri: str | list[str]) -> dict | None:
        uris = [uri] if isinstance(uri, str) else uri
        return self.s3.fsspec_storage_options() if any(is_s3(u) for u in uris) else None

    @staticmethod
    def _check_exists(uri: str | list[str], options: dict | None) -> None:
        # Dask reads a glob that matches nothing as an empty frame; a typo should fail loudly instead.
        for one in [uri] if isinstance(uri, str) else uri:
            fs, path = fsspec.core.url_to_fs(one, **(options or {}))
            found = fs.glob(path) if _GLOB_CHARS & set(path) else fs.exists(path)
            if not found:
                raise DataError("no such file, directory or matching files", path=one)


DaskDataLoader = DaskOnRayLoader

_SIZE_META = pd.DataFrame({"rows": pd.Series(dtype="int64"), "bytes": pd.Series(dtype="int64")})


def _partition_size(part: pd.DataFrame) -> pd.DataFrame:
    """Rows and in-memory bytes (strings included) of one partition."""
    return pd.DataFrame(
        {"rows": [len(part)], "bytes": [int(part.memory_usage(deep=True, index=False).sum())]}
    )


@contextlib.contextmanager
def _missing_path_as_data_error(uri: str | list[str]) -> Iterator[None]:
    try:
        yield
    except FileNotFoundError as exc:
        raise DataError(f"not found: {exc}", path=str(uri)) from exc
