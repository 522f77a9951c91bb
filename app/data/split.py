"""Deterministic train/validation/test split and sampling that work while streaming.

Each row goes where the hash of its id (or of the whole row) sends it, so the split is the same on
every run and for any number of blocks or workers, and needs no shuffle and no global state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

if TYPE_CHECKING:
    import ray.data


def row_unit_interval(table: pa.Table, *, key_columns: list[str] | None = None, seed: int = 0) -> np.ndarray:
    """A number in [0, 1) per row from a stable hash of ``key_columns`` (all columns when None)."""
    if not 0 <= seed < 10**16:
        raise ValueError(f"seed must be in [0, 1e16), got {seed}")
    cols = key_columns or table.column_names
    frame = table.select(cols).to_pandas()
    hashes = _mix(pd.util.hash_pandas_object(frame, index=False).to_numpy(), seed)
    return (hashes >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _mix(hashes: np.ndarray, seed: int) -> np.ndarray:
    """splitmix64 of hash + seed: pandas' hash_key only reaches string columns, this reaches all."""
    with np.errstate(over="ignore"):
        z = hashes.astype(np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def rows_of_split(
    table: pa.Table, *, low: float, high: float, key_columns: list[str] | None, seed: int
) -> pa.Table:
    """The rows of ``table`` whose hash falls in ``[low, high)``: one split's share of a block."""
    u = row_unit_interval(table, key_columns=key_columns, seed=seed)
    return table.filter(pa.array((u >= low) & (u < high)))


@dataclass(frozen=True)
class Splits:
    """Lazy datasets of one split; ``test`` is None when no test fraction was asked for."""

    train: ray.data.Dataset
    valid: ray.data.Dataset
    test: ray.data.Dataset | None


def _bounded(ds: ray.data.Dataset, low: float, high: float, key_columns, seed: int) -> ray.data.Dataset:
    return ds.map_batches(
        rows_of_split,  # the operator's name on the dashboard: MapBatches(rows_of_split)
        batch_format="pyarrow",
        batch_size=None,
        zero_copy_batch=True,
        fn_kwargs={"low": low, "high": high, "key_columns": key_columns, "seed": seed},
    )


def split(
    ds: ray.data.Dataset,
    *,
    valid_fraction: float = 0.2,
    test_fraction: float = 0.0,
    seed: int = 0,
    key_columns: list[str] | None = None,
) -> Splits:
    """Split a dataset by row hash: rows with hash in [0, train) train, then valid, then test.

    Example:
        >>> s = split(ds, valid_fraction=0.2, key_columns=["user_id"])  # doctest: +SKIP
        >>> s.train.count() + s.valid.count() == ds.count()  # doctest: +SKIP
        True
    """
    if not 0 < valid_fraction < 1 or not 0 <= test_fraction < 1 or valid_fraction + test_fraction >= 1:
        raise ValueError(
            f"fractions must leave rows for training: valid_fraction={valid_fraction}, "
            f"test_fraction={test_fraction}"
        )
    train_end = 1.0 - valid_fraction - test_fraction
    valid_end = 1.0 - test_fraction
    return Splits(
        train=_bounded(ds, 0.0, train_end, key_columns, seed),
        valid=_bounded(ds, train_end, valid_end, key_columns, seed),
        test=_bounded(ds, valid_end, 1.0 + 1e-9, key_columns, seed) if test_fraction else None,
    )


def sample(
    ds: ray.data.Dataset, frac: float, *, seed: int = 0, key_columns: list[str] | None = None
) -> ray.data.Dataset:
    """A deterministic ``frac`` sample: the same rows on every run and for any block count."""
    if not 0 < frac <= 1:
        raise ValueError(f"frac must be in (0, 1], got {frac}")
    # A seed other than the split's, so a sample is not one end of the split.
    return _bounded(ds, 0.0, frac, key_columns, seed + 7919)
