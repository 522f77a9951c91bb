"""Chunk transforms for the csv_to_parquet tests, importable as ``tests.data.prep_transforms:NAME``."""

from __future__ import annotations

import pandas as pd

NOT_CALLABLE = 42


def add_double(df: pd.DataFrame) -> pd.DataFrame:
    """Keep the rows whose id is not a multiple of 3 and add ``double = 2 * x``."""
    out = df[df["id"] % 3 != 0].copy()
    out["double"] = out["x"] * 2
    return out


def breaks_types(df: pd.DataFrame) -> pd.DataFrame:
    """Turn ``id`` into text in every chunk but the first, so later chunks no longer fit its schema."""
    if df["id"].iloc[0] > 0:
        df["id"] = "id-" + df["id"].astype(str)
    return df


def returns_list(df: pd.DataFrame) -> list:
    return df.to_numpy().tolist()


class FailOnce:
    """Raises on the chunk starting at row ``at_row`` the first time it sees it; the same name every run."""

    def __init__(self, at_row: int):
        self.at_row = at_row
        self.failed = False

    def __call__(self, df: pd.DataFrame) -> pd.DataFrame:
        if not self.failed and df["id"].iloc[0] == self.at_row:
            self.failed = True
            raise RuntimeError("simulated crash")
        return df
