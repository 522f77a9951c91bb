"""``Rows``: a request's validated rows as the service passes them on (to the cache and the model)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


class Rows:
    """A request's validated rows, exactly ``features``: an Arrow table, or — JSON rows of a model whose
    features are all numbers — one float64 matrix (features in order, NaN for missing), from which a
    small request's cache keys and prediction come without Arrow's per-column costs. Either form gives
    the other when asked."""

    __slots__ = ("features", "matrix", "_table")

    def __init__(
        self, features: tuple[str, ...], *, table: pa.Table | None = None, matrix: np.ndarray | None = None
    ) -> None:
        self.features, self.matrix, self._table = features, matrix, table

    @property
    def num_rows(self) -> int:
        return len(self.matrix) if self.matrix is not None else self.table.num_rows

    @property
    def table(self) -> pa.Table:
        if self._table is None:  # NaN back to null: what the same rows parsed as Arrow hold
            columns = self.matrix.T  # type: ignore[union-attr]
            arrays = [pa.array(values, from_pandas=True) for values in columns]
            self._table = pa.Table.from_arrays(arrays, names=list(self.features))
        return self._table

    def model_input(self) -> pa.Table | np.ndarray:
        """What the predictor takes: the matrix when there is one, else the table."""
        return self.matrix if self.matrix is not None else self.table

    def records(self, features: list[str]) -> list[dict]:
        """``features`` as one dict per row, missing values None (what the table's ``to_pylist`` gives),
        read from the matrix directly when there is one (NaN is its missing value)."""
        if self.matrix is None:
            return self.table.select(features).to_pylist()
        values = self.matrix[:, [self.features.index(f) for f in features]].tolist()
        return [{f: None if v != v else v for f, v in zip(features, row, strict=True)} for row in values]

    def take(self, indices: list[int]) -> Rows:
        if self.matrix is not None:
            return Rows(self.features, matrix=self.matrix[indices])
        return Rows(self.features, table=self.table.take(indices))

    @classmethod
    def concat(cls, parts: list[Rows]) -> Rows:
        """One ``Rows`` of ``parts`` in order (Arrow's ``ArrowInvalid``/``ArrowTypeError`` when their
        tables' types cannot be unified)."""
        if len(parts) == 1:
            return parts[0]
        if all(p.matrix is not None for p in parts):
            return cls(parts[0].features, matrix=np.concatenate([p.matrix for p in parts]))  # type: ignore[misc]
        tables = [p.table for p in parts]
        return cls(parts[0].features, table=pa.concat_tables(tables, promote_options="permissive"))
