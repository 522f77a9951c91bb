"""Small datasets written to disk for the data-layer tests."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest


def write(frame: pd.DataFrame, path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 600
    return pd.DataFrame(
        {
            "id": np.arange(n, dtype=np.int64),
            "x": rng.normal(size=n),
            "k": rng.integers(0, 50, size=n),
            "c": rng.choice(["a", "b", "c"], size=n),
            "y": rng.integers(0, 2, size=n),
        }
    )


@pytest.fixture
def multi_file_dir(tmp_path, frame):
    """The frame in three Parquet files of consecutive rows."""
    out = tmp_path / "multi"
    for i, part in enumerate(np.array_split(np.arange(len(frame)), 3)):
        write(frame.iloc[part], out / f"part-{i}.parquet")
    return out
