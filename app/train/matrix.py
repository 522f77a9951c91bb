"""The preprocessor's columns as the row-major float32 matrix XGBoost and LightGBM take."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.data.encode import Preprocessor


def feature_matrix(columns: dict, features: list[str]):
    """Row-major float32 matrix of ``features`` from the preprocessor's columns (one copy)."""
    import numpy as np

    n = len(columns[features[0]]) if features else 0
    out = np.empty((n, len(features)), dtype=np.float32)
    fill_rows(out, 0, [columns[name] for name in features])
    return out


def matrix_frame(columns: dict, pre: Preprocessor):
    """The preprocessor's columns as one float32 frame (how XGBoost and LightGBM take features)."""
    import pandas as pd

    return pd.DataFrame(feature_matrix(columns, pre.columns), columns=pre.columns)


def fill_rows(out, row: int, columns: list, *, step: int = 4096) -> None:
    """Write ``columns`` into the row-major ``out`` from ``row`` on, ``step`` rows at a time.

    Column by column over the whole length writes one value per cache line; a few thousand rows at a
    time keep the rows being written in cache.
    """
    m = len(columns[0]) if columns else 0
    for start in range(0, m, step):
        block = out[row + start : row + min(start + step, m)]
        for j, values in enumerate(columns):
            block[:, j] = values[start : start + step]
