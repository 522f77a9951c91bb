"""Generated datasets of bench/quality.py with a known signal: mixed-type tables and a covertype-shaped one.

One builder per dataset, ``build(rows=..., seed=...) -> DataFrame`` with the label in ``target``;
seeded, so a builder returns the same frame for the same arguments.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TARGET = "target"


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


# The seed offsets keep each of the three tables its own draw (and today's figures comparable).
def synth_binary(*, rows: int = 20_000, seed: int = 0) -> pd.DataFrame:
    """~7 % positives; see make_synthetic."""
    return make_synthetic("binary", rows, seed)


def synth_multiclass(*, rows: int = 15_000, seed: int = 0) -> pd.DataFrame:
    """4 classes of 50/30/15/5 %; see make_synthetic."""
    return make_synthetic("multiclass", rows, seed + 1)


def synth_regression(*, rows: int = 15_000, seed: int = 0) -> pd.DataFrame:
    """A Gaussian-noise target; see make_synthetic."""
    return make_synthetic("regression", rows, seed + 2)


def cover_multiclass(*, rows: int = 120_000, seed: int = 0) -> pd.DataFrame:
    """Shaped like covertype: 10 terrain measures, 40 soil and 4 area indicator columns, 7 unequal classes.

    The class is drawn from a softmax over per-class scores (linear and non-linear terms of the terrain,
    the soil and the area), so even the true model is far from certain.
    """
    rng = np.random.default_rng(seed + 3)
    n, n_classes = rows, 7
    terrain = rng.normal(size=(n, 10))
    soil = np.minimum(rng.zipf(1.6, size=n) - 1, 39)
    area = rng.choice(4, size=n, p=[0.45, 0.05, 0.35, 0.15])
    weights = rng.normal(scale=0.6, size=(10, n_classes))
    logits = (
        terrain @ weights
        + np.outer(np.sin(2.0 * terrain[:, 0]), rng.normal(size=n_classes))
        + np.outer(terrain[:, 1] * terrain[:, 2], rng.normal(scale=0.5, size=n_classes))
        + np.outer(np.abs(terrain[:, 3]), rng.normal(scale=0.7, size=n_classes))
        + rng.normal(scale=0.8, size=(40, n_classes))[soil]
        + rng.normal(scale=0.8, size=(4, n_classes))[area]
        + np.array([1.6, 1.8, 0.4, -1.8, -0.6, -0.1, 0.2])  # class shares far apart, as in covertype
    )
    label = np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)  # a draw from softmax(logits)
    frame = pd.DataFrame({f"terrain{i}": terrain[:, i].astype(np.float32) for i in range(10)})
    # Scaled like elevation / slope / distances rather than unit normals.
    frame["terrain0"] = (2900 + 280 * terrain[:, 0]).round().astype(np.int32)
    frame["terrain4"] = np.exp(5 + 0.6 * terrain[:, 4]).round().astype(np.int32)
    for j in range(40):
        frame[f"soil{j:02d}"] = (soil == j).astype(np.int8)
    for j in range(4):
        frame[f"area{j}"] = (area == j).astype(np.int8)
    frame[TARGET] = label.astype(np.int64) + 1  # classes 1..7, as covertype labels them
    return frame


def wave_multiclass(*, rows: int = 150_000, seed: int = 0) -> pd.DataFrame:
    """48 numeric columns, 7 classes drawn from a softmax over smooth non-linear per-class scores.

    24 informative columns each add their own sinusoid to every class's score; 12 pairs of them interact;
    8 oblique directions (random mixes of the informative columns) add a sinusoid each, which axis-aligned
    trees approximate only step by step. 12 columns are noisy copies of informative ones and 12 pure noise.
    Many small smooth terms in 7 classes: boosting needs hundreds of rounds to fit them, the shape where a
    7-class model's rounds (7 trees each) and its save are slow.
    """
    rng = np.random.default_rng(seed + 4)
    n, n_classes, informative = rows, 7, 24
    x = rng.normal(size=(n, informative))
    logits = np.zeros((n, n_classes))
    freq = rng.uniform(0.6, 2.0, size=(informative, n_classes))
    phase = rng.uniform(0.0, 2 * np.pi, size=(informative, n_classes))
    amp = rng.normal(scale=0.35, size=(informative, n_classes))
    for j in range(informative):
        logits += amp[j] * np.sin(freq[j] * x[:, j, None] + phase[j])
    pairs = rng.permutation(informative).reshape(12, 2)
    for a, b in pairs:
        logits += np.outer(np.tanh(x[:, a] * x[:, b]), rng.normal(scale=0.4, size=n_classes))
    mix = rng.normal(size=(informative, 8)) / np.sqrt(informative)
    logits += np.sin(1.5 * (x @ mix)) @ rng.normal(scale=0.5, size=(8, n_classes))
    logits = 1.8 * logits + np.array([0.9, 0.7, 0.4, 0.1, -0.2, -0.5, -0.9])  # unequal classes
    label = np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)  # a draw from softmax(logits)
    copies = x[:, rng.choice(informative, size=12, replace=False)] + rng.normal(scale=0.7, size=(n, 12))
    noise = rng.normal(size=(n, 12))
    columns = np.concatenate([x, copies, noise], axis=1)[:, rng.permutation(48)]  # informative ones mixed in
    frame = pd.DataFrame({f"s{i:02d}": columns[:, i].astype(np.float32) for i in range(48)})
    frame[TARGET] = label.astype(np.int64)
    return frame
