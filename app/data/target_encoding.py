"""Target and frequency encoding of high-cardinality categoricals, fitted in one streaming pass.

Training rows carry a fold (``__fold__``, from a hash of the row); each level's counts and target sums are
kept per fold, so a training row is encoded from the other folds' rows only and any other row (validation,
serving) from every training row. The statistics are plain JSON inside ``preprocessor.json``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from app.data.split import row_unit_interval

if TYPE_CHECKING:
    import ray.data

    from app.data.encode import Preprocessor
    from app.data.stats import DatasetProfile

FOLD = "__fold__"
FOLDS = 5
# Levels kept per encoded column: at most MAX_LEVELS, and fewer when the target has many dimensions, so
# that a column's statistics stay under MAX_NUMBERS numbers in preprocessor.json. Rarer levels are
# encoded as unseen ones (the prior, frequency 0); CatBoost sees them in the unknown bucket.
MAX_LEVELS = 10_000
MAX_NUMBERS = 500_000
# The driver merges blocks' statistics until this many (level, fold) rows wait, then keeps the
# most frequent levels (4x the cap), so memory stays bounded for any number of distinct levels.
_MERGE_ROWS = 1_000_000
_MAX_SMOOTHING = 1e4
_FOLD_SEED = 104_729  # away from the split's and the sample's seeds: folds cut across both


def level_cap(dims: int) -> int:
    """Levels kept for a column whose target has ``dims`` dimensions (classes for multiclass, else 1)."""
    return max(1, min(MAX_LEVELS, MAX_NUMBERS // (FOLDS * (1 + dims))))


def encoded_names(name: str, dims: int) -> list[str]:
    """The columns a high-cardinality feature adds after its code: frequency, then target means."""
    te = [f"{name}__te"] if dims == 1 else [f"{name}__te{k}" for k in range(dims)]
    return [f"{name}__freq", *te]


def high_cardinality(profile: DatasetProfile, columns: list[str], *, over: int) -> list[str]:
    """The categorical ``columns`` with more than ``over`` distinct levels in the training split."""
    out = []
    for name in columns:
        col = profile[name]
        if col.distinct_exact is False or (col.distinct or 0) > over:
            out.append(name)
    return out


def target_dims(pre: Preprocessor) -> int:
    return pre.num_classes if pre.task == "multiclass" else 1


def with_folds(table: pa.Table, *, seed: int, key_columns: list[str] | None) -> pa.Table:
    """``table`` plus ``__fold__`` (0 .. FOLDS-1) from a stable hash of ``key_columns`` (all when None)."""
    u = row_unit_interval(table, key_columns=key_columns, seed=seed + _FOLD_SEED)
    return table.append_column(FOLD, pa.array((u * FOLDS).astype(np.int8)))


def add_folds(ds: ray.data.Dataset, *, seed: int, key_columns: list[str] | None) -> ray.data.Dataset:
    """The training split with each row's fold: the same fold on every pass, for any block count."""
    return ds.map_batches(
        with_folds,
        batch_format="pyarrow",
        batch_size=None,
        zero_copy_batch=True,
        fn_kwargs={"seed": seed, "key_columns": key_columns},
    )


def _targets(pre: Preprocessor, table: pa.Table) -> tuple[pa.Table, np.ndarray]:
    """Rows with a target, and the target as an ``(n, dims)`` float64 matrix (one-hot for multiclass)."""
    column = table.column(pre.target)
    if column.null_count:
        table = table.filter(pc.is_valid(column))
    y = pre.encode_target(table.column(pre.target)).astype(np.float64)
    if pre.task == "multiclass":
        return table, np.eye(pre.num_classes)[y.astype(np.int64)]
    return table, y[:, None]


def _stats_table(keys: np.ndarray, y: np.ndarray, squares: bool) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Unique ``keys`` and, per key, the row count ``n``, target sums ``s<k>`` (and ``q<k>``, squares)."""
    uniq, inverse = np.unique(keys, return_inverse=True)
    out = {"n": np.bincount(inverse, minlength=len(uniq)).astype(np.float64)}
    for k in range(y.shape[1]):
        out[f"s{k}"] = np.bincount(inverse, weights=y[:, k], minlength=len(uniq))
        if squares:
            out[f"q{k}"] = np.bincount(inverse, weights=y[:, k] ** 2, minlength=len(uniq))
    return uniq, out


def block_stats(table: pa.Table, *, pre: Preprocessor, columns: list[str]) -> dict[str, list]:
    """One block -> per column an Arrow IPC table of (level, fold, n, s<k>[, q<k>]) rows, plus the
    per-fold totals of every row with a target (under the name ``__fold__``)."""
    table, y = _targets(pre, table)
    fold = np.asarray(table.column(FOLD).to_numpy(zero_copy_only=False), dtype=np.int64)
    squares = pre.task == "regression"
    names, blobs = [], []
    _, totals = _stats_table(fold, y, True)
    parts = {FOLD: pa.table({"fold": pa.array(np.unique(fold), pa.int64()), **totals})}
    for name in columns:
        values = table.column(name)
        if pa.types.is_dictionary(values.type):
            values = pc.cast(values, values.type.value_type)
        encoded = pc.dictionary_encode(values.combine_chunks())
        index = np.asarray(pc.fill_null(encoded.indices, 0).to_numpy(), dtype=np.int64)
        valid = np.asarray(pc.is_valid(encoded.indices).to_numpy(zero_copy_only=False), dtype=bool)
        keys, stats = _stats_table(index[valid] * FOLDS + fold[valid], y[valid], squares)
        level = encoded.dictionary.take(pa.array(keys // FOLDS))
        parts[name] = pa.table({"level": level, "fold": pa.array(keys % FOLDS), **stats})
    for name, part in parts.items():
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, part.schema) as writer:
            writer.write_table(part)
        names.append(name)
        blobs.append(sink.getvalue().to_pybytes())
    return {"column": names, "ipc": blobs}


def merge_summaries(parts: list[pa.Table], keys: list[str], *, keep_levels: int | None = None) -> pa.Table:
    """Blocks' summaries as one: sums per ``keys``; with ``keep_levels``, only that many levels (the
    most frequent) stay."""
    table = pa.concat_tables(parts, promote_options="permissive")
    sums = [c for c in table.column_names if c not in keys]
    table = table.group_by(keys).aggregate([(c, "sum") for c in sums])
    table = table.rename_columns([c.removesuffix("_sum") for c in table.column_names])
    if keep_levels is None or "level" not in keys:
        return table
    per_level = table.group_by(["level"]).aggregate([("n", "sum")])
    if per_level.num_rows <= keep_levels:
        return table
    top = per_level.sort_by([("n_sum", "descending")]).slice(0, keep_levels).column("level")
    return table.filter(pc.is_in(table.column("level"), value_set=top))


def fit_encodings(
    ds: ray.data.Dataset, pre: Preprocessor, columns: list[str]
) -> dict[str, tuple[list[Any], dict[str, Any]]]:
    """Each column's kept levels (most frequent first) and its encoding, from one pass over ``ds``.

    ``ds`` is the training split with its ``__fold__`` column. Blocks are summarised where they are read;
    the driver merges the summaries, keeping at most 4x ``level_cap`` levels between merges.
    """
    dims = target_dims(pre)
    cap = level_cap(dims)
    summaries = ds.select_columns(list(dict.fromkeys([*columns, pre.target, FOLD]))).map_batches(
        block_stats,
        batch_format="pyarrow",
        batch_size=None,
        zero_copy_batch=True,
        fn_kwargs={"pre": pre, "columns": columns},
    )
    pending: dict[str, list[pa.Table]] = {name: [] for name in [FOLD, *columns]}
    for row in summaries.iter_rows():
        parts = pending[row["column"]]
        parts.append(pa.ipc.open_stream(row["ipc"]).read_all())
        if row["column"] != FOLD and sum(p.num_rows for p in parts) > _MERGE_ROWS:
            pending[row["column"]] = [merge_summaries(parts, ["level", "fold"], keep_levels=4 * cap)]
    fold_parts = pending.pop(FOLD)
    totals = _fold_totals(merge_summaries(fold_parts, ["fold"]) if fold_parts else None, dims)
    out = {}
    for name, parts in pending.items():
        stats = merge_summaries(parts, ["level", "fold"]) if parts else None
        out[name] = _column_encoding(stats, totals, dims, cap)
    return out


def _fold_totals(table: pa.Table | None, dims: int) -> dict[str, np.ndarray]:
    """Per-fold totals of every row with a target: ``n (F,)``, ``s (F, dims)``, ``q (F, dims)``."""
    n, s, q = np.zeros(FOLDS), np.zeros((FOLDS, dims)), np.zeros((FOLDS, dims))
    if table is not None:
        fold = table.column("fold").to_numpy()
        n[fold] = table.column("n").to_numpy()
        for k in range(dims):
            s[fold, k] = table.column(f"s{k}").to_numpy()
            q[fold, k] = table.column(f"q{k}").to_numpy()
    return {"n": n, "s": s, "q": q}


def _column_encoding(
    stats: pa.Table | None, totals: dict[str, np.ndarray], dims: int, cap: int
) -> tuple[list[Any], dict[str, Any]]:
    """The ``cap`` most frequent levels (ties by their text, so the order is stable) and their encoding."""
    levels: list[Any] = []
    counts, sums, squares = np.zeros((0, FOLDS)), np.zeros((0, FOLDS, dims)), np.zeros((0, FOLDS, dims))
    if stats is not None and stats.num_rows:
        per_level = stats.group_by(["level"]).aggregate([("n", "sum")])
        ranked = sorted(
            zip(per_level.column("level").to_pylist(), per_level.column("n_sum").to_pylist(), strict=True),
            key=lambda kv: (-kv[1], str(kv[0])),
        )[:cap]
        levels = [v for v, _ in ranked]
        index = pc.index_in(
            stats.column("level"), value_set=pa.array(levels, type=stats.column("level").type)
        )
        kept = stats.filter(pc.is_valid(index))
        row = np.asarray(pc.drop_null(index).to_numpy(), dtype=np.int64)
        fold = kept.column("fold").to_numpy()
        counts, sums = np.zeros((len(levels), FOLDS)), np.zeros((len(levels), FOLDS, dims))
        squares = np.zeros_like(sums)
        counts[row, fold] = kept.column("n").to_numpy()
        for k in range(dims):
            sums[row, fold, k] = kept.column(f"s{k}").to_numpy()
            q = f"q{k}" if f"q{k}" in kept.column_names else f"s{k}"  # classes are 0/1: y^2 = y
            squares[row, fold, k] = kept.column(q).to_numpy()
    prior, smoothing = [], []
    for k in [*range(FOLDS), None]:  # each fold's rows left out in turn, then none (every other row)
        n_all, s_all = _left_out(totals["n"], k, axis=0), _left_out(totals["s"], k, axis=0)
        prior.append((s_all / n_all if n_all > 0 else np.zeros(dims)).tolist())
        n, s, q = (_left_out(a, k, axis=1) for a in (counts, sums, squares))
        smoothing.append(_smoothing(n, s, q))
    integral = bool(np.all(sums == np.round(sums)))
    encoding = {
        "folds": FOLDS,
        "rows": int(totals["n"].sum()),
        "counts": counts.astype(np.int64).tolist(),
        "sums": (sums.astype(np.int64) if integral else sums).reshape(len(levels), -1).tolist(),
        "prior": prior,
        "smoothing": smoothing,
    }
    return levels, encoding


def _left_out(a: np.ndarray, fold: int | None, *, axis: int) -> np.ndarray:
    """The sum of ``a`` over its fold axis without ``fold`` (all folds when None)."""
    total = a.sum(axis=axis)
    return total if fold is None else total - np.take(a, fold, axis=axis)


def _smoothing(n: np.ndarray, s: np.ndarray, q: np.ndarray) -> float:
    """Empirical-Bayes prior weight: within-level variance over between-level variance (method of
    moments), so noisy levels lean on the prior and clearly distinct ones do not. Pooled over the target's
    dimensions: one weight keeps a level's class shares summing to 1."""
    seen = n > 0
    n, s, q = n[seen], s[seen], q[seen]
    levels, rows = len(n), float(n.sum())
    if levels < 2 or rows <= levels:
        return _MAX_SMOOTHING
    mean = s.sum(axis=0) / rows
    level_ss = (s**2 / n[:, None]).sum(axis=0)
    within = max(float((q.sum(axis=0) - level_ss).sum()) / (rows - levels), 0.0)
    spread = float((level_ss - rows * mean**2).sum()) - (levels - 1) * within
    between = spread / (rows - float((n**2).sum()) / rows)
    if between <= 0:
        return _MAX_SMOOTHING
    return float(np.clip(within / between, 1.0, _MAX_SMOOTHING))


class LevelEncoder:
    """One column's encoding as arrays: ``encode(codes, folds)`` gives its frequency and target means.

    ``codes`` are the preprocessor's codes (``len(levels)`` for any other level, NaN for null); a row's
    fold picks the statistics without that fold, and a row without one (-1) uses them all.
    """

    def __init__(self, encoding: dict[str, Any], n_levels: int, dims: int) -> None:
        folds = int(encoding["folds"])
        # One extra level (the unknown bucket, never counted) and one extra fold (none left out).
        self.counts = np.zeros((n_levels + 1, folds + 1))
        self.sums = np.zeros((n_levels + 1, folds + 1, dims))
        if n_levels:
            self.counts[:n_levels, :folds] = np.asarray(encoding["counts"], dtype=np.float64)
            self.sums[:n_levels, :folds] = np.asarray(encoding["sums"], dtype=np.float64).reshape(
                n_levels, folds, dims
            )
        self.total_n, self.total_s = self.counts.sum(axis=1), self.sums.sum(axis=1)
        self.prior = np.asarray(encoding["prior"], dtype=np.float64).reshape(folds + 1, dims)
        self.smoothing = np.asarray(encoding["smoothing"], dtype=np.float64).reshape(folds + 1, 1)
        self.rows, self.folds = max(int(encoding["rows"]), 1), folds

    def encode(self, codes: np.ndarray, folds: np.ndarray | None) -> list[np.ndarray]:
        """The frequency column, then one target-mean column per dimension (float32, NaN where null)."""
        missing = np.isnan(codes)
        level = np.where(missing, len(self.counts) - 1, codes).astype(np.int64)
        fold = np.full(len(codes), self.folds) if folds is None else np.where(folds < 0, self.folds, folds)
        n = self.total_n[level] - self.counts[level, fold]
        s = self.total_s[level] - self.sums[level, fold]
        m, prior = self.smoothing[fold], self.prior[fold]
        te = (s + m * prior) / (n[:, None] + m)
        freq = self.total_n[level] / self.rows
        freq[missing], te[missing] = np.nan, np.nan
        return [freq.astype(np.float32), *(te[:, k].astype(np.float32) for k in range(te.shape[1]))]
