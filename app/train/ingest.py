"""Worker-side ingestion: stream a Ray Data shard through the preprocessor into library inputs.

Nothing here turns a shard into one pandas frame. XGBoost gets an ``xgboost.DataIter`` over encoded
batches (``QuantileDMatrix`` from batches held in memory, or ``ExtMemQuantileDMatrix`` from batches
spilled once to local disk when the shard is over the memory budget); LightGBM and CatBoost get one
float32 copy filled batch by batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.data.encode import LABEL, WEIGHT, Preprocessor
from app.train.matrix import fill_rows


@dataclass
class Batch:
    """One encoded batch: features as a float32 matrix (column-major: each feature's values are
    contiguous, as the preprocessor made them), labels, optional weights."""

    x: np.ndarray
    y: np.ndarray
    w: np.ndarray | None

    @property
    def nbytes(self) -> int:
        return self.x.nbytes + self.y.nbytes + (self.w.nbytes if self.w is not None else 0)


def iter_columns(
    shard, preprocessor: Preprocessor, *, batch_rows: int | None = None, stats: dict | None = None
) -> Iterator[dict]:
    """The shard's batches as the preprocessor's float32 columns (``__label__``, ``__weight__`` included).

    ``stats`` (when given) accumulates ``wait_s`` (waiting on Ray Data) and ``encode_s`` (preprocessing).
    """
    stats = {} if stats is None else stats
    batches = iter(shard.iter_batches(batch_size=batch_rows, batch_format="pyarrow", prefetch_batches=2))
    while True:
        t0 = time.perf_counter()
        table = next(batches, None)
        t1 = time.perf_counter()
        stats["wait_s"] = stats.get("wait_s", 0.0) + t1 - t0
        if table is None:
            return
        if not table.num_rows:
            continue
        cols = preprocessor.transform(table)
        stats["encode_s"] = stats.get("encode_s", 0.0) + time.perf_counter() - t1
        if len(cols[LABEL]):
            yield cols


def iter_batches(
    shard, preprocessor: Preprocessor, *, batch_rows: int | None = None, stats: dict | None = None
) -> Iterator[Batch]:
    """The shard's batches as feature matrices.

    Column-major, because that is one contiguous copy per column (writing the columns into a row-major
    matrix is a strided write per value); XGBoost reads either layout with the same QuantileDMatrix time.
    """
    features = preprocessor.columns
    for cols in iter_columns(shard, preprocessor, batch_rows=batch_rows, stats=stats):
        n = len(cols[LABEL])
        x = np.stack([cols.pop(name) for name in features]).T if features else np.empty((n, 0), np.float32)
        yield Batch(x=x, y=cols[LABEL], w=cols.get(WEIGHT))


def stack_columns(
    batches: list[dict], preprocessor: Preprocessor
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One float32 matrix from column batches, freeing each batch as it is copied (peak ~ one copy)."""
    features = preprocessor.columns
    n = sum(len(b[LABEL]) for b in batches)
    x = np.empty((n, len(features)), dtype=np.float32)  # pages are touched only as rows are filled
    y = np.empty(n, dtype=np.float32)
    w = np.empty(n, dtype=np.float32) if batches and WEIGHT in batches[0] else None
    row = 0
    while batches:
        cols = batches.pop(0)
        m = len(cols[LABEL])
        fill_rows(x, row, [cols[name] for name in features])
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


class Spill:
    """Batches written once to local ``.npy`` files and read back memory-mapped, in the same order.

    XGBoost passes over its input several times and needs the same batches in the same order each
    time; Ray Data promises neither (block order, and with several workers which rows a shard gets,
    can change between epochs). Spilling also reads the shard through Ray Data only once.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.rows = self.batches = self.nbytes = 0

    def write(self, batches: Iterator[Batch]) -> Spill:
        for batch in batches:
            for key, arr in (("x", batch.x), ("y", batch.y), ("w", batch.w)):
                if arr is not None:
                    np.save(self._path(self.batches, key), arr)
            self.rows += len(batch.y)
            self.nbytes += batch.nbytes
            self.batches += 1
        return self

    def __iter__(self) -> Iterator[Batch]:
        for i in range(self.batches):
            x, y = (np.load(self._path(i, k), mmap_mode="r") for k in "xy")
            w_path = self._path(i, "w")
            yield Batch(x=x, y=y, w=np.load(w_path, mmap_mode="r") if w_path.exists() else None)

    def _path(self, index: int, key: str) -> Path:
        return self.directory / f"{index:06d}-{key}.npy"


def make_data_iter(
    batches: list[Batch] | Spill, *, preprocessor: Preprocessor, cache_prefix: str | None = None
):
    """An ``xgboost.DataIter`` over batches held in memory or spilled to disk (same order every pass)."""
    import xgboost

    class _BatchIter(xgboost.DataIter):
        def __init__(self) -> None:
            super().__init__(cache_prefix=cache_prefix, release_data=True)
            self._it: Iterator[Batch] | None = None
            self.passes = 0

        def next(self, input_data: Callable) -> bool:
            if self._it is None:
                self._it = iter(batches)
                self.passes += 1
            batch = next(self._it, None)
            if batch is None:
                return False
            input_data(
                data=batch.x,
                label=batch.y,
                weight=batch.w,
                feature_names=preprocessor.columns,
                feature_types=preprocessor.feature_types,
            )
            return True

        def reset(self) -> None:
            self._it = None

    return _BatchIter()


def estimate_shard_bytes(*, num_rows: int, num_features: int, num_workers: int, weighted: bool) -> int:
    """Bytes a worker's shard takes as float32 features, label and weight."""
    per_row = 4 * (num_features + 1 + int(weighted))
    return int(num_rows / max(num_workers, 1) * per_row)
