"""The in-memory trial data keeps the rows in the files' order, however the blocks finish: the same data
gives the same arrays (and so the same models) on every run."""

from __future__ import annotations

import numpy as np

from app.data.encode import Preprocessor
from app.search.inprocess import _encode


def _slow_first_blocks(batch):
    import time

    # Blocks with low row ids take longest, so without order they arrive last.
    time.sleep(0.3 if batch["i"][0] < 40 else 0.0)
    return batch


def test_rows_come_in_the_files_order_and_the_context_is_left_as_it_was(ray_session):
    import ray

    ds = ray.data.range(80, override_num_blocks=8).map_batches(
        lambda b: {"i": b["id"], "y": b["id"] * 2.0}, batch_format="numpy"
    )
    ds = ds.map_batches(_slow_first_blocks, batch_format="numpy", batch_size=None)
    pre = Preprocessor(features=["i"], categories={}, datetime=[], target="y", task="regression")
    before = ds.context.execution_options.preserve_order
    x, y, _, raw = _encode(ds, pre, keep_raw=5)
    np.testing.assert_array_equal(x[:, 0], np.arange(80, dtype=np.float32))
    np.testing.assert_array_equal(y, np.arange(80, dtype=np.float32) * 2)
    assert raw.column("i").to_pylist() == [0, 1, 2, 3, 4]
    assert ds.context.execution_options.preserve_order == before
