"""Streaming statistics in one pass: the reference profile for drift and the search's defaults.

Each block is summarised where it is read (count, nulls, moments, min/max, a KLL quantile sketch for
numeric columns, top-k counts for categoricals); the small summaries are merged on the driver.
The profile is saved as JSON next to a run.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from app import atomic

if TYPE_CHECKING:
    import ray.data

QUANTILES = (0.0, 0.01, 0.05, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.9, 0.95, 0.99, 1.0)
_KLL_K = 400  # KLL's accuracy parameter: rank error well under one percentile, small per column
_TOPK_CAPACITY = 4096  # exact counts up to this many distinct levels, then the rarest are dropped


def _kll():
    from datasketches import kll_doubles_sketch

    return kll_doubles_sketch


@dataclass
class _NumericAcc:
    count: int = 0
    nulls: int = 0
    finite: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float = math.inf
    max: float = -math.inf
    sketch: bytes | None = None

    def update(self, column: pa.ChunkedArray | pa.Array) -> None:
        self.nulls += column.null_count
        values = pc.drop_null(column)
        if pa.types.is_boolean(values.type) or pa.types.is_decimal(values.type):
            values = pc.cast(values, pa.float64())
        arr = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)
        finite = arr[np.isfinite(arr)]
        other = _NumericAcc(
            count=len(arr),
            finite=len(finite),
            mean=float(finite.mean()) if len(finite) else 0.0,
            m2=float(((finite - finite.mean()) ** 2).sum()) if len(finite) else 0.0,
            min=float(arr.min()) if len(arr) else math.inf,
            max=float(arr.max()) if len(arr) else -math.inf,
        )
        sketch = _kll()(_KLL_K)
        if len(finite):
            sketch.update(finite)
        other.sketch = sketch.serialize()
        self.merge(other)

    def merge(self, other: _NumericAcc) -> None:
        """Chan et al.'s parallel update of mean and M2 over the finite values."""
        n_a, n_b = self.finite, other.finite
        if n_a + n_b:
            delta = other.mean - self.mean
            total = n_a + n_b
            self.mean += delta * n_b / total
            self.m2 += other.m2 + delta * delta * n_a * n_b / total
        self.count += other.count
        self.finite += other.finite
        self.nulls += other.nulls
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        if other.sketch is not None:
            merged = _kll()(_KLL_K) if self.sketch is None else _kll().deserialize(self.sketch)
            merged.merge(_kll().deserialize(other.sketch))
            self.sketch = merged.serialize()


@dataclass
class _TopKAcc:
    count: int = 0
    nulls: int = 0
    counts: dict[Any, int] = field(default_factory=dict)
    truncated: bool = False

    def update(self, column: pa.ChunkedArray | pa.Array) -> None:
        self.nulls += column.null_count
        self.count += len(column) - column.null_count
        if pa.types.is_dictionary(column.type):
            column = pc.cast(column, column.type.value_type)
        for item in pc.value_counts(pc.drop_null(column)).to_pylist():
            self.counts[item["values"]] = self.counts.get(item["values"], 0) + item["counts"]
        self._prune()

    def merge(self, other: _TopKAcc) -> None:
        self.count += other.count
        self.nulls += other.nulls
        self.truncated |= other.truncated
        for value, n in other.counts.items():
            self.counts[value] = self.counts.get(value, 0) + n
        self._prune()

    def _prune(self) -> None:
        if len(self.counts) > _TOPK_CAPACITY:
            kept = sorted(self.counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[:_TOPK_CAPACITY]
            self.counts = dict(kept)
            self.truncated = True


@dataclass
class ColumnProfile:
    """Statistics of one column. ``top_k`` is most frequent first; ``quantiles`` maps q -> value."""

    name: str
    kind: str
    dtype: str
    count: int
    nulls: int
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    quantiles: dict[str, float] | None = None
    top_k: list[tuple[Any, int]] | None = None
    distinct: int | None = None
    distinct_exact: bool | None = None


@dataclass
class DatasetProfile:
    """Per-column statistics of a dataset, JSON round-trippable."""

    num_rows: int
    columns: dict[str, ColumnProfile]
    target: str | None = None

    def __getitem__(self, name: str) -> ColumnProfile:
        return self.columns[name]

    def to_dict(self) -> dict:
        return {
            "num_rows": self.num_rows,
            "target": self.target,
            "columns": {k: asdict(v) for k, v in self.columns.items()},
        }

    @classmethod
    def from_dict(cls, raw: dict) -> DatasetProfile:
        cols = {}
        for name, c in raw["columns"].items():
            c = dict(c)
            if c.get("top_k") is not None:
                c["top_k"] = [tuple(kv) for kv in c["top_k"]]
            cols[name] = ColumnProfile(**c)
        return cls(num_rows=raw["num_rows"], columns=cols, target=raw.get("target"))

    def save(self, path: str | Path) -> Path:
        return atomic.write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> DatasetProfile:
        return cls.from_dict(json.loads(Path(path).read_text()))


def _summarise(table: pa.Table, *, numeric: list[str], topk: list[str]) -> dict[str, list]:
    """One block -> one row holding every column's accumulator (encoded as JSON)."""
    state: dict[str, dict] = {}
    for name in numeric:
        acc = _NumericAcc()
        acc.update(table.column(name))
        d = asdict(acc)
        d["sketch"] = base64.b64encode(acc.sketch).decode() if acc.sketch else None
        state[f"n:{name}"] = d
    for name in topk:
        acc = _TopKAcc()
        acc.update(table.column(name))
        state[f"k:{name}"] = {
            "count": acc.count,
            "nulls": acc.nulls,
            "truncated": acc.truncated,
            "counts": [[v, n] for v, n in acc.counts.items()],
        }
    return {"rows": [table.num_rows], "state": [json.dumps(state, default=atomic.plain)]}


def profile(
    ds: ray.data.Dataset,
    *,
    numeric: list[str],
    categorical: list[str],
    target: str | None = None,
    datetime: list[str] | None = None,
    top_k: int = 100,
    schema: pa.Schema | None = None,
) -> DatasetProfile:
    """Statistics of every listed column in one streaming pass over ``ds``.

    Numeric columns get moments, min/max and quantiles; categorical ones top-k counts and the number of
    distinct levels (exact up to 4,096). The target gets both when it is numeric, so the task can be
    inferred from it. Datetime columns are profiled as numbers of seconds since the epoch. ``schema``
    (e.g. from the files' footers) gives the target's type without ``ds.schema()``, which runs the
    dataset's first block through its transforms (a Ray Data run of its own).

    Long on purpose: one Ray Data pass computes every column's summary, and the driver-side merge is its
    other half; apart, the two would share the per-column state through an extra structure.
    """
    datetime = datetime or []
    numeric_cols = list(dict.fromkeys(numeric + datetime))
    topk_cols = list(categorical)
    wanted = set(numeric_cols + topk_cols + ([target] if target is not None else []))
    if schema is None or not wanted <= set(schema.names):
        schema = ds.schema()
    types = dict(zip(schema.names, schema.types, strict=True)) if schema is not None else {}
    if target is not None:
        if target not in topk_cols and target not in numeric_cols:
            target_type = types.get(target)
            is_cat = target_type is not None and (
                pa.types.is_string(target_type)
                or pa.types.is_large_string(target_type)
                or pa.types.is_dictionary(target_type)
            )
            (topk_cols if is_cat else numeric_cols).append(target)
        if target not in topk_cols:
            topk_cols.append(target)

    def summarise(table: pa.Table) -> dict[str, list]:
        for name in datetime:
            idx = table.schema.get_field_index(name)
            table = table.set_column(idx, name, _epoch_seconds(table.column(name)))
        return _summarise(table, numeric=numeric_cols, topk=topk_cols)

    num = {c: _NumericAcc() for c in numeric_cols}
    cat = {c: _TopKAcc() for c in topk_cols}
    rows = 0
    parts = ds.select_columns(list(dict.fromkeys(numeric_cols + topk_cols))).map_batches(
        summarise, batch_format="pyarrow", batch_size=None, zero_copy_batch=True
    )
    for part in parts.iter_rows():
        rows += int(part["rows"])
        state = json.loads(part["state"])
        for name, acc in num.items():
            d = dict(state[f"n:{name}"])
            d["sketch"] = base64.b64decode(d["sketch"]) if d["sketch"] else None
            acc.merge(_NumericAcc(**d))
        for name, acc in cat.items():
            d = state[f"k:{name}"]
            acc.merge(
                _TopKAcc(
                    count=d["count"],
                    nulls=d["nulls"],
                    truncated=d["truncated"],
                    counts={_hashable(v): n for v, n in d["counts"]},
                )
            )
    columns: dict[str, ColumnProfile] = {}
    for name in numeric_cols:
        acc = num[name]
        sketch = _kll().deserialize(acc.sketch) if acc.sketch else None
        has_values = acc.finite > 0 and sketch is not None
        columns[name] = ColumnProfile(
            name=name,
            kind="datetime" if name in datetime else "numeric",
            dtype=str(types.get(name)),
            count=acc.count,
            nulls=acc.nulls,
            min=acc.min if acc.count else None,
            max=acc.max if acc.count else None,
            mean=acc.mean if has_values else None,
            std=math.sqrt(acc.m2 / (acc.finite - 1)) if acc.finite > 1 else None,
            quantiles=_quantiles(sketch, acc) if has_values else None,
        )
    for name in topk_cols:
        acc = cat[name]
        ranked = sorted(acc.counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
        entry = columns.get(name) or ColumnProfile(
            name=name, kind="categorical", dtype=str(types.get(name)), count=acc.count, nulls=acc.nulls
        )
        entry.top_k = ranked[:top_k] if name != target else ranked[: max(top_k, 1000)]
        entry.distinct = len(acc.counts)
        entry.distinct_exact = not acc.truncated
        columns[name] = entry
    return DatasetProfile(num_rows=rows, columns=columns, target=target)


def _quantiles(sketch, acc: _NumericAcc) -> dict[str, float]:
    values = dict(zip(QUANTILES, sketch.get_quantiles(list(QUANTILES)), strict=True))
    # KLL keeps a sample of the tails; the exact extremes are known, so use them.
    finite = [v for v in (acc.min, acc.max) if math.isfinite(v)]
    values[0.0], values[1.0] = min(finite, default=values[0.0]), max(finite, default=values[1.0])
    return {str(q): float(v) for q, v in values.items()}


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _epoch_seconds(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_date(column.type):
        column = pc.cast(column, pa.timestamp("s"))
    return pc.divide(pc.cast(pc.cast(column, pa.timestamp("us")), pa.int64()), 1e6)
