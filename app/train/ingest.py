"""Worker-side ingestion: stream a Ray Data shard through the preprocessor into library inputs.

Nothing here turns a shard into one pandas frame. XGBoost gets an ``xgboost.DataIter`` over encoded
batches (``QuantileDMatrix`` from batches held in memory, or ``ExtMemQuantileDMatrix`` re-reading the
shard on every pass); LightGBM and CatBoost get one float32 copy filled batch by batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from app.data.encode import LABEL, WEIGHT, Preprocessor
from app.train.common import feature_matrix


@dataclass
class Batch:
    """One encoded batch: features as a row-major float32 matrix, labels, optional weights."""

    x: np.ndarray
    y: np.ndarray
    w: np.ndarray | None

    @property
    def nbytes(self) -> int:
        return self.x.nbytes + self.y.nbytes + (self.w.nbytes if self.w is not None else 0)


def iter_columns(shard, preprocessor: Preprocessor, *, batch_rows: int | None = None) -> Iterator[dict]:
    """The shard's batches as the preprocessor's float32 columns (``__label__``, ``__weight__`` included)."""
    for table in shard.iter_batches(batch_size=batch_rows, batch_format="pyarrow", prefetch_batches=2):
        if table.num_rows:
            cols = preprocessor.transform(table)
            if len(cols[LABEL]):
                yield cols


def iter_batches(shard, preprocessor: Preprocessor, *, batch_rows: int | None = None) -> Iterator[Batch]:
    """The shard's batches as feature matrices."""
    features = preprocessor.features
    for cols in iter_columns(shard, preprocessor, batch_rows=batch_rows):
        yield Batch(x=feature_matrix(cols, features), y=cols[LABEL], w=cols.get(WEIGHT))


def stack_columns(batches: list[dict], preprocessor: Preprocessor) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One float32 matrix from column batches, freeing each batch as it is copied (peak ~ one copy)."""
    features = preprocessor.features
    n = sum(len(b[LABEL]) for b in batches)
    x = np.empty((n, len(features)), dtype=np.float32)  # pages are touched only as rows are filled
    y = np.empty(n, dtype=np.float32)
    w = np.empty(n, dtype=np.float32) if batches and WEIGHT in batches[0] else None
    row = 0
    while batches:
        cols = batches.pop(0)
        m = len(cols[LABEL])
        for j, name in enumerate(features):
            x[row : row + m, j] = cols[name]
        y[row : row + m] = cols[LABEL]
        if w is not None:
            w[row : row + m] = cols[WEIGHT]
        row += m
    return x, y, w


def concat_columns(batches: list[dict], names: list[str]) -> dict[str, np.ndarray]:
    """Column-wise concatenation of column batches, freeing each column's pieces once copied."""
    out = {}
    for name in names:
        if batches and name in batches[0]:
            out[name] = np.concatenate([b.pop(name) for b in batches])
    batches.clear()
    return out


def make_data_iter(source: Callable[[], Iterator[Batch]], *, preprocessor: Preprocessor, cache_prefix: str | None):
    """An ``xgboost.DataIter`` that restarts ``source()`` on every pass XGBoost makes over the data."""
    import xgboost

    class _ShardIter(xgboost.DataIter):
        def __init__(self) -> None:
            super().__init__(cache_prefix=cache_prefix, release_data=True)
            self._it: Iterator[Batch] | None = None
            self.rows = 0
            self.batches = 0
            self.passes = 0

        def next(self, input_data: Callable) -> bool:
            if self._it is None:
                self._it = source()
                self.passes += 1
            batch = next(self._it, None)
            if batch is None:
                return False
            if self.passes == 1:
                self.rows += len(batch.y)
                self.batches += 1
            input_data(
                data=batch.x,
                label=batch.y,
                weight=batch.w,
                feature_names=preprocessor.features,
                feature_types=preprocessor.feature_types,
            )
            return True

        def reset(self) -> None:
            self._it = None

    return _ShardIter()


def estimate_shard_bytes(*, num_rows: int, num_features: int, num_workers: int, weighted: bool) -> int:
    """Bytes a worker's shard takes as float32 features, label and weight."""
    per_row = 4 * (num_features + 1 + int(weighted))
    return int(num_rows / max(num_workers, 1) * per_row)
