"""Datasets of bench/quality.py and their one train/test split, written as Parquet for every system.

scikit-learn's bundled ones (no download) and generated ones with numeric, low- and high-cardinality
categorical, missing (some informatively) and date columns.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

TARGET = "target"


def _sklearn(name: str) -> pd.DataFrame:
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")(as_frame=True)
    frame = bunch.frame.rename(columns=lambda c: re.sub(r"[^0-9A-Za-z_]+", "_", str(c)).strip("_"))
    return frame.rename(columns={"target": TARGET})


def make_synthetic(task: str, n_rows: int, seed: int = 0) -> pd.DataFrame:
    """Numeric, categorical (3, 8 and ~300 levels), missing values and a date with a trend, a
    season and a weekend effect; binary is imbalanced (~7 % positives), multiclass has 4 unequal classes."""
    rng = np.random.default_rng(seed)
    n = n_rows
    x = rng.normal(size=(n, 6))
    region_levels = [f"r{i}" for i in range(8)]
    region = rng.choice(region_levels, size=n, p=[0.3, 0.2, 0.15, 0.1, 0.1, 0.08, 0.05, 0.02])
    region_effect = dict(zip(region_levels, [0.0, 0.6, -0.4, 0.9, -0.8, 0.3, 1.2, -1.5], strict=True))
    n_products = 300
    product_idx = np.minimum(rng.zipf(1.3, size=n) - 1, n_products - 1)
    product_effect = rng.normal(scale=0.7, size=n_products)
    channel = rng.choice(["web", "store", "phone"], size=n, p=[0.6, 0.3, 0.1])
    day = rng.integers(0, 730, size=n)
    date = pd.Timestamp("2022-01-03") + pd.to_timedelta(day, unit="D")  # a Monday
    weekend = (day % 7 >= 5).astype(float)
    season = np.sin(2 * np.pi * day / 365.25)

    signal = (
        1.2 * x[:, 0]
        + 0.8 * x[:, 1] * (channel == "web")
        - 0.6 * np.abs(x[:, 2])
        + 0.5 * np.tanh(2 * x[:, 3])
        + pd.Series(region).map(region_effect).to_numpy()
        + product_effect[product_idx]
        + 0.8 * weekend
        + 0.5 * season
        + 0.4 * day / 730
    )
    frame = pd.DataFrame({f"num{i}": x[:, i].astype(np.float32) for i in range(6)})
    # Missing: at random in num3, informative in num1 (hidden when large), and in region.
    frame.loc[rng.random(n) < 0.15, "num3"] = np.nan
    frame.loc[(x[:, 1] > 1.0) & (rng.random(n) < 0.6), "num1"] = np.nan
    region_col = pd.Series(region, dtype="object")
    region_col[rng.random(n) < 0.1] = None
    frame["region"] = region_col
    frame["product"] = pd.Series([f"p{i:03d}" for i in product_idx], dtype="object")
    frame["channel"] = pd.Series(channel, dtype="object")
    frame["event_date"] = date.astype("datetime64[ns]")
    noise = rng.logistic(scale=0.6, size=n)
    if task == "binary":
        z = signal + noise
        frame[TARGET] = (z > np.quantile(z, 0.93)).astype(np.int64)
    elif task == "multiclass":
        z = signal + noise
        frame[TARGET] = np.digitize(z, np.quantile(z, [0.5, 0.8, 0.95])).astype(np.int64)
    else:
        frame[TARGET] = (3.0 * signal + rng.normal(scale=1.0, size=n)).astype(np.float64)
    return frame


DATASETS = {
    "breast_cancer": ("binary", lambda seed: _sklearn("breast_cancer")),
    "wine": ("multiclass", lambda seed: _sklearn("wine")),
    "digits": ("multiclass", lambda seed: _sklearn("digits")),
    "diabetes": ("regression", lambda seed: _sklearn("diabetes")),
    "synth_binary": ("binary", lambda seed: make_synthetic("binary", 20_000, seed)),
    "synth_multiclass": ("multiclass", lambda seed: make_synthetic("multiclass", 15_000, seed + 1)),
    "synth_regression": ("regression", lambda seed: make_synthetic("regression", 15_000, seed + 2)),
}


def write_split(name: str, out: Path, seed: int) -> dict:
    from sklearn.model_selection import train_test_split

    task, load = DATASETS[name]
    frame = load(seed)
    train, test = train_test_split(
        frame,
        test_size=0.25,
        random_state=seed,
        stratify=frame[TARGET] if task != "regression" else None,
    )
    d = out / "splits" / name
    d.mkdir(parents=True, exist_ok=True)
    train.reset_index(drop=True).to_parquet(d / "train.parquet", index=False)
    test.reset_index(drop=True).to_parquet(d / "test.parquet", index=False)
    return {
        "name": name,
        "task": task,
        "train": d / "train.parquet",
        "test": d / "test.parquet",
        "rows": len(frame),
        "features": frame.shape[1] - 1,
    }
