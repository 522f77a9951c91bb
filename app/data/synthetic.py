"""Generated tabular datasets with a known signal, for the quickstart, tests and benchmarks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from app.data.encode import Task


def make_frame(
    n_rows: int, *, task: Task = "binary", n_numeric: int = 6, seed: int = 0, n_classes: int = 4
) -> pd.DataFrame:
    """Numeric features (``x0`` drives the target most), a categorical with nulls and rare levels,
    a date, and the target ``y``. ``x0`` … ``x2`` carry signal; the rest is noise. Multiclass: ``n_classes``
    classes, bands of the signal (four: fixed cut points; else equal shares)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_rows, n_numeric)).astype(np.float32)
    city = rng.choice(
        ["paris", "lyon", "nice", "lille", "rare_a", "rare_b"],
        size=n_rows,
        p=[0.4, 0.3, 0.15, 0.13, 0.01, 0.01],
    )
    city_effect = pd.Series(city).map({"paris": 0.8, "lyon": -0.5, "nice": 0.3}).fillna(0.0).to_numpy()
    signal = 2.0 * x[:, 0] + 1.0 * x[:, 1] - 0.8 * x[:, 2] * x[:, 1] + city_effect
    frame = pd.DataFrame({f"x{i}": x[:, i] for i in range(n_numeric)})
    frame.loc[rng.random(n_rows) < 0.05, "x3"] = np.nan
    city_col = pd.Series(city, dtype="object")
    city_col[rng.random(n_rows) < 0.05] = None
    frame["city"] = city_col
    frame["signup"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n_rows), unit="D")
    noise = rng.normal(scale=0.5, size=n_rows)
    if task == "regression":
        frame["y"] = (signal + noise).astype(np.float64)
    elif task == "binary":
        frame["y"] = (signal + noise > 0).astype(np.int64)
    else:
        score = signal + noise
        shares = np.linspace(0, 1, n_classes + 1)[1:-1]
        cuts = [-1.5, 0.0, 1.5] if n_classes == 4 else np.quantile(score, shares)
        frame["y"] = np.digitize(score, cuts).astype(np.int64)
    return frame


def write_parquet(frame: pd.DataFrame, out_dir: str | Path, *, files: int = 4) -> list[Path]:
    """Write ``frame`` as ``files`` Parquet files of consecutive rows under ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, part in enumerate(np.array_split(np.arange(len(frame)), files)):
        path = out_dir / f"part-{i:05d}.parquet"
        pq.write_table(pa.Table.from_pandas(frame.iloc[part], preserve_index=False), path)
        paths.append(path)
    return paths
