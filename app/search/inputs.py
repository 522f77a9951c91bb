"""What ``AutoMLEngine.fit`` accepts, turned into a ``DatasetSpec``: a path or URI, a Ray Dataset, pandas
or numpy with labels."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from app.config import S3Config
from app.data import DatasetSpec


def dataset_spec(X: Any, y: Any, target: str | None, *, out_dir: Path, s3: S3Config) -> DatasetSpec:
    """A ``DatasetSpec`` for what ``fit`` was given: a path or URI as it is; a Ray Dataset, pandas or numpy
    (with ``y``) written as Parquet under ``out_dir/data``."""
    data_dir = out_dir / "data"
    if isinstance(X, str | Path) or (isinstance(X, list) and X and isinstance(X[0], str)):
        if target is None:
            raise ValueError("fit(uri, target=...) needs the target column name")
        uri = [str(u) for u in X] if isinstance(X, list) else str(X)
        return DatasetSpec(uri=uri, target=target, s3=s3)
    if hasattr(X, "write_parquet") and hasattr(X, "iter_batches"):  # a Ray Dataset
        if target is None:
            raise ValueError("fit(dataset, target=...) needs the target column name")
        shutil.rmtree(data_dir, ignore_errors=True)
        X.write_parquet(str(data_dir.resolve()))
        return DatasetSpec(uri=str(data_dir), target=target)
    frame = (
        X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X)).rename(columns=lambda c: f"x{c}")
    )
    if y is None:
        if target is None or target not in frame:
            raise ValueError("fit(X, y): pass y, or target= naming a column of X")
    else:
        target = target or (getattr(y, "name", None) or "target")
        if len(y) != len(frame):
            raise ValueError(f"X has {len(frame)} rows but y has {len(y)}")
        frame = frame.assign(**{target: np.asarray(y)})
    shutil.rmtree(data_dir, ignore_errors=True)
    from app.data.synthetic import write_parquet

    write_parquet(frame.reset_index(drop=True), data_dir, files=max(1, min(8, len(frame) // 50_000 or 1)))
    return DatasetSpec(uri=str(data_dir), target=target)
