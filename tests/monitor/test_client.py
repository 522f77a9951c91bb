"""What a replica's monitor client keeps of the rows it serves, as the monitor reads them."""

import math

import numpy as np
import pyarrow as pa

from app.monitor.client import MonitorClient
from app.serve.rows import Rows

FEATURES = ("x0", "x1", "x2")


def _client() -> MonitorClient:
    return MonitorClient(lambda: {}, features=["x2", "x0"], sample_rate=1.0, seed=0)


def _answers(n: int) -> list[dict]:
    return [{"prediction_id": f"r-{i}", "prediction": 1, "proba_0": 0.25, "proba_1": 0.75} for i in range(n)]


def test_sampled_rows_from_a_matrix_match_the_same_rows_from_a_table():
    matrix = np.array([[1.0, math.nan, 3.0], [4.0, 5.0, math.nan]])
    table = pa.table({"x0": [1.0, 4.0], "x1": [None, 5.0], "x2": [3.0, None]})
    from_matrix, from_table = _client(), _client()
    from_matrix.offer(Rows(FEATURES, matrix=matrix), _answers(2), [0, 1])
    from_table.offer(Rows(FEATURES, table=table), _answers(2), [0, 1])
    assert [row for _, row, _ in from_matrix.buffer] == [{"x2": 3.0, "x0": 1.0}, {"x2": None, "x0": 4.0}]
    assert from_matrix.buffer == from_table.buffer
    assert [pid for pid, _, _ in from_matrix.buffer] == ["r-0", "r-1"]


def test_a_sample_rate_keeps_about_that_share_of_the_rows():
    client = MonitorClient(lambda: {}, features=list(FEATURES), sample_rate=0.1, seed=1)
    client.offer(Rows(FEATURES, matrix=np.zeros((2000, 3))), _answers(2000), [0, 1])
    assert 120 <= len(client.buffer) <= 280
