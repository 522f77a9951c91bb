"""One preprocessor for training and serving: features to float32, categories to stable codes.

Fitted from a ``DatasetProfile``, plus one pass over the training split for high-cardinality columns'
target and frequency encodings (``app.data.target_encoding``); applied per batch in ``map_batches`` or
per request, and saved as plain JSON, never pickled.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from app import atomic
from app.data import csv_types
from app.data.errors import DataError
from app.data.stats import DatasetProfile
from app.data.target_encoding import FOLD, LevelEncoder, encoded_names, target_dims

Task = Literal["binary", "multiclass", "regression"]
LABEL = "__label__"
WEIGHT = "__weight__"
# 2: date/time columns also give calendar parts (``DATE_PARTS``); 3: ``encodings`` (a 2 file has none)
FORMAT_VERSION = 3
_READABLE = (2, 3)
MAX_CLASSES = 1000
# Up to this many rows (a served request), plain numeric columns convert together (``_small_float_block``);
# larger batches convert column by column, without the extra copies.
SMALL_ROWS = 1024
# Calendar parts every date/time feature adds next to its epoch seconds: trees cannot read a weekday
# or a season off a count of seconds without many splits, which a weekly effect does not get.
_DATE_PARTS = {
    "dayofweek": pc.day_of_week,
    "month": pc.month,
    "day": pc.day,
    "dayofyear": pc.day_of_year,
    "hour": pc.hour,
}
DATE_PARTS = tuple(_DATE_PARTS)


def infer_task(profile: DatasetProfile, target: str, *, max_classes: int = 50) -> Task:
    """binary for two levels, multiclass for a string target or up to ``max_classes`` integer levels,
    else regression."""
    col = profile[target]
    levels = col.distinct if col.distinct_exact else None
    if levels is not None and levels < 2:
        raise DataError(f"target has {levels} distinct value(s): nothing to learn", column=target)
    if col.kind == "categorical" or "bool" in col.dtype:
        return "binary" if levels == 2 else "multiclass"
    if levels == 2:
        return "binary"
    integer = "int" in col.dtype
    if integer and levels is not None and levels <= max_classes:
        return "multiclass"
    return "regression"


@dataclass
class Preprocessor:
    """Maps raw columns to the model's float32 matrix and the target to labels.

    ``categories[col]`` lists the levels kept for ``col`` (most frequent first); a level's code is its
    index, every other non-null value gets ``len(levels)`` (the unknown bucket), nulls stay NaN.
    ``features`` are the raw input columns; ``columns`` the model's matrix columns (a date/time
    feature ``d`` becomes ``d`` in epoch seconds plus ``d__dayofweek``, ``d__month``, ...).

    ``encodings[col]`` holds a high-cardinality column's per-level, per-fold counts and target sums
    (``app.data.target_encoding``). Such a column gives its code (a categorical feature for CatBoost, a
    frequency rank for XGBoost and LightGBM), then ``col__freq`` and its smoothed target mean
    (``col__te``, or ``col__te0`` ... per class for multiclass). A row with a ``__fold__`` (a training
    row) is encoded out of fold; any other row, and any level not kept, from all training rows (an unseen
    level gets the prior and frequency 0).
    """

    features: list[str]
    categories: dict[str, list[Any]]
    datetime: list[str]
    target: str | None
    task: Task | None
    classes: list[Any] | None = None
    weight: str | None = None
    encodings: dict[str, dict[str, Any]] = field(default_factory=dict)
    version: int = FORMAT_VERSION
    _lookup: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def fit(
        cls,
        profile: DatasetProfile,
        *,
        features: list[str],
        categorical: list[str],
        datetime: list[str] | None = None,
        target: str | None = None,
        task: Task | None = None,
        weight: str | None = None,
        max_categories: int = 256,
    ) -> Preprocessor:
        """Choose codes from the profile's top-k counts; ``task`` is inferred when not given."""
        categories = {}
        for name in categorical:
            top = profile[name].top_k or []
            categories[name] = [v for v, _ in top[:max_categories]]
        classes = None
        if target is not None:
            task = task or infer_task(profile, target)
            if task != "regression":
                top = profile[target].top_k or []
                if profile[target].distinct_exact is False or len(top) > MAX_CLASSES:
                    raise DataError(
                        f"more than {MAX_CLASSES} classes: not a classification target", column=target
                    )
                classes = sorted((v for v, _ in top), key=_class_order)
        return cls(
            features=list(features),
            categories=categories,
            datetime=list(datetime or []),
            target=target,
            task=task,
            classes=classes,
            weight=weight,
        )

    def with_encodings(self, fitted: dict[str, tuple[list[Any], dict[str, Any]]]) -> Preprocessor:
        """This preprocessor with ``fitted`` columns' kept levels and encodings (``fit_encodings``)."""
        categories = {**self.categories, **{name: levels for name, (levels, _) in fitted.items()}}
        encodings = {**self.encodings, **{name: enc for name, (_, enc) in fitted.items()}}
        return replace(self, categories=categories, encodings=encodings)

    @property
    def columns(self) -> list[str]:
        """The model's input columns, in matrix order: what ``transform`` returns besides the label."""
        out = []
        for name in self.features:
            out.append(name)
            if name in self.datetime:
                out.extend(f"{name}__{part}" for part in DATE_PARTS)
            if name in self.encodings:
                out.extend(encoded_names(name, target_dims(self)))
        return out

    @property
    def categorical_features(self) -> list[str]:
        """Every categorical feature, high-cardinality ones included (CatBoost's categorical features)."""
        return [f for f in self.features if f in self.categories]

    @property
    def encoded_columns(self) -> list[str]:
        """The frequency and target-mean columns of high-cardinality features (CatBoost ignores them:
        it computes its own ordered target statistics from the codes)."""
        return [
            c
            for name in self.features
            if name in self.encodings
            for c in encoded_names(name, target_dims(self))
        ]

    @property
    def feature_types(self) -> list[str]:
        """XGBoost's feature types: ``c`` for categorical codes, ``q`` for the rest (high-cardinality
        codes too: those models split on the columns' frequency and target means instead)."""
        return ["c" if f in self.categories and f not in self.encodings else "q" for f in self.columns]

    @property
    def takes_matrix(self) -> bool:
        """Every feature is a plain number: ``transform`` then takes the rows as one float matrix."""
        return not (self.categories or self.datetime or self.encodings)

    @property
    def num_classes(self) -> int:
        return len(self.classes) if self.classes else 0

    def transform(
        self, batch: pa.Table | pd.DataFrame | np.ndarray, *, with_target: bool = True
    ) -> dict[str, np.ndarray]:
        """``columns`` as float32 arrays keyed by name, plus ``__label__`` / ``__weight__``.

        Rows whose target is null are dropped (they cannot be learnt from); a missing column is a
        ``DataError`` naming it. A 2-D float array holds the features in order, NaN for missing, and is
        taken only when ``takes_matrix`` (no target).
        """
        if isinstance(batch, np.ndarray):
            return self._matrix_columns(batch)
        table = batch if isinstance(batch, pa.Table) else pa.Table.from_pandas(batch, preserve_index=False)
        if with_target and self.target is not None:
            self._require(table, self.target)
            if table.column(self.target).null_count:
                table = table.filter(pc.is_valid(table.column(self.target)))
        out: dict[str, np.ndarray] = {}
        present = set(table.column_names)  # Table.column_names builds a new list on every call
        missing = [name for name in self.features if name not in present]
        if missing:
            self._require(table, missing[0])
        folds = _folds(table) if self.encodings else None
        block = self._small_float_block(table) if table.num_rows <= SMALL_ROWS else {}
        for name in self.features:
            if name in block:
                out[name] = block[name]
            elif name in self.datetime:
                out.update(_date_columns(name, table.column(name)))
            else:
                out[name] = self._encode_feature(name, table.column(name))
            if name in self.encodings:
                values = self._encoder(name).encode(out[name], folds)
                out.update(zip(encoded_names(name, target_dims(self)), values, strict=True))
        if with_target and self.target is not None:
            out[LABEL] = self._encode_target(table.column(self.target))
            if self.weight is not None:
                self._require(table, self.weight)
                out[WEIGHT] = _to_float32(table.column(self.weight))
        return out

    def transform_frame(self, batch: pa.Table | pd.DataFrame, *, with_target: bool = True) -> pd.DataFrame:
        return pd.DataFrame(self.transform(batch, with_target=with_target))

    def decode_labels(self, codes: np.ndarray) -> np.ndarray:
        """Class codes back to the original labels."""
        if not self.classes:
            return codes
        return np.asarray(self.classes, dtype=object)[np.asarray(codes, dtype=np.int64)]

    def encode_target(self, column: pa.ChunkedArray) -> np.ndarray:
        """Target values as float32: class codes (``classes`` order) or numbers; no nulls allowed."""
        return self._encode_target(column)

    def _matrix_columns(self, matrix: np.ndarray) -> dict[str, np.ndarray]:
        if not self.takes_matrix or matrix.ndim != 2 or matrix.shape[1] != len(self.features):
            raise DataError(
                f"a feature matrix needs {len(self.features)} numeric columns ({', '.join(self.features)}) "
                f"and a model whose features are all numbers; got shape {matrix.shape}"
            )
        block = matrix.astype(np.float32, copy=False)
        return {name: block[:, j] for j, name in enumerate(self.features)}

    def _small_float_block(self, table: pa.Table) -> dict[str, np.ndarray]:
        """A few rows' plain numeric features as float32 columns, from one Arrow call (per column, the
        conversion's fixed costs are most of a one-row prediction); empty when they are not all numbers."""
        skip = {*self.datetime, *self.categories, *self.encodings}
        plain = [f for f in self.features if f not in skip]
        matrix = number_matrix(table.select(plain), row_major=False) if len(plain) > 1 else None
        if matrix is None:
            return {}
        matrix = matrix.astype(np.float32, copy=False)
        return {name: matrix[:, j] for j, name in enumerate(plain)}

    def _encoder(self, name: str) -> LevelEncoder:
        key = f"{name}:encoding"
        if key not in self._lookup:
            self._lookup[key] = LevelEncoder(
                self.encodings[name], len(self.categories[name]), target_dims(self)
            )
        return self._lookup[key]

    def _require(self, table: pa.Table, name: str) -> None:
        if name not in table.column_names:
            raise DataError(f"column missing from input; it has {table.column_names}", column=name)

    def _encode_feature(self, name: str, column: pa.ChunkedArray) -> np.ndarray:
        if name in self.categories:
            return self._codes(name, self.categories[name], column)
        try:
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                # Numbers sent as text, with missing-value markers ("?", "N/A", ...) as NaN.
                column, _ = csv_types.to_numeric(column, pa.float64(), csv_types.na_tokens(), name=name)
            return _to_float32(column)
        except csv_types.NumberParseError as exc:
            raise DataError(str(exc), column=name) from None
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise DataError(f"cannot read {column.type} as a number: {exc}", column=name) from None

    def _codes(self, key: str, levels: list[Any], column: pa.ChunkedArray) -> np.ndarray:
        if pa.types.is_dictionary(column.type):
            column = pc.cast(column, column.type.value_type)
        cache_key = f"{key}:{column.type}"
        value_set = self._lookup.get(cache_key)
        if value_set is None:
            try:  # compare in the column's own type, so 1.0 matches 1.0 and True matches True
                value_set = pa.array(levels).cast(column.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                value_set = None
            self._lookup[cache_key] = value_set
        if value_set is None:  # e.g. numbers sent as strings: compare as text
            column, value_set = pc.cast(column, pa.string()), pa.array([str(v) for v in levels], pa.string())
        codes = pc.index_in(column, value_set=value_set)
        codes = pc.if_else(pc.and_(pc.is_null(codes), pc.is_valid(column)), len(levels), codes)
        return _to_float32(codes)

    def _encode_target(self, column: pa.ChunkedArray) -> np.ndarray:
        if self.task == "regression":
            return _to_float32(column)
        codes = self._codes("__target__", self.classes or [], column)
        if np.any(codes >= self.num_classes):
            unknown = [v for v in pc.unique(column).to_pylist() if v not in (self.classes or [])]
            raise DataError(f"target has classes not seen when fitting: {unknown[:5]}", column=self.target)
        return codes

    def to_dict(self) -> dict:
        # Not asdict: it would deep-copy the cached lookups too.
        return {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self) if f.init}

    @classmethod
    def from_dict(cls, raw: dict) -> Preprocessor:
        if raw.get("version") not in _READABLE:
            raise DataError(f"preprocessor format {raw.get('version')} is not one of {_READABLE}")
        return cls(**{**{k: v for k, v in raw.items() if k != "_lookup"}, "version": FORMAT_VERSION})

    def save(self, path: str | Path) -> Path:
        return atomic.write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> Preprocessor:
        return cls.from_dict(json.loads(Path(path).read_text()))


def _folds(table: pa.Table) -> np.ndarray | None:
    """Each row's training fold (-1 where it has none), or None for rows that are not training rows."""
    if FOLD not in table.schema.names:
        return None
    return np.asarray(pc.fill_null(table.column(FOLD), -1).to_numpy(), dtype=np.int64)


def _date_columns(name: str, column: pa.ChunkedArray) -> dict[str, np.ndarray]:
    """Epoch seconds and the calendar parts of a date or timestamp column (nulls stay NaN)."""
    if pa.types.is_date(column.type):
        column = pc.cast(column, pa.timestamp("s"))
    try:
        micros = pc.cast(column, pa.timestamp("us", tz=getattr(column.type, "tz", None)))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise DataError(f"cannot read {column.type} as a date/time: {exc}", column=name) from None
    out = {name: _to_float32(pc.divide(pc.cast(micros, pa.int64()), 1e6))}
    for part, extract in _DATE_PARTS.items():
        out[f"{name}__{part}"] = _to_float32(extract(micros))
    return out


def number_matrix(table: pa.Table, *, row_major: bool = True) -> np.ndarray | None:
    """Every column of ``table`` in one floating-point matrix (missing values as NaN; integers beside
    floats as float64), from one Arrow call; None when a column is not integer or floating, or all are
    integers (their own conversion is exact)."""
    batches = table.combine_chunks().to_batches()
    if len(batches) != 1:
        return None
    try:
        matrix = np.asarray(batches[0].to_tensor(null_to_nan=True, row_major=row_major))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    return matrix if matrix.dtype.kind == "f" else None


def _to_float32(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    if pa.types.is_null(column.type):
        return np.full(len(column), np.nan, dtype=np.float32)
    if pa.types.is_floating(column.type) or pa.types.is_integer(column.type):
        # Arrow's own conversion (nulls as NaN) skips a compute-kernel call per column, which is most of
        # the cost of a one-row request; integers go through float64, exact below 2**53.
        chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
        if not chunks:
            return np.empty(0, dtype=np.float32)
        arrays = [c.to_numpy(zero_copy_only=False) for c in chunks]
        values = arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
        return values.astype(np.float32, copy=False)
    values = pc.cast(column, pa.float32())
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False)


def _class_order(value: Any) -> tuple:
    return (0, value, "") if isinstance(value, int | float) else (1, 0, str(value))
