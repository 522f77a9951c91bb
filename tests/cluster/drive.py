"""Drivers the two-node tests run as separate processes (``python -m tests.cluster.drive train ...``): a
test's own process may hold another Ray already. Each prints one JSON line with what the test asserts."""

from __future__ import annotations

import json
import sys
import time

SLOW_ROUND_S = 0.15


def slow_first_attempt(done: int, *, resumed: bool, rank: int) -> None:
    """Rounds of a run that did not start from a checkpoint take a while, so that the test can take a
    node down mid-run; a resumed run goes at full speed."""
    if not resumed:
        time.sleep(SLOW_ROUND_S)


def train(storage: str, endpoint: str) -> None:
    """Two Ray Train workers spread over the nodes, checkpointing to S3 at ``storage``."""
    import pyarrow.fs as pafs

    from app.cluster import connect
    from app.config import TrainConfig
    from app.train import train as run
    from tests.train.conftest import datasets, preprocessor

    connect()
    config = TrainConfig(
        family="xgboost",
        num_workers=2,
        cpus_per_worker=0.5,
        placement_strategy="SPREAD",
        num_boost_round=60,
        early_stopping_rounds=None,
        checkpoint_every=10,
        report_every_s=None,
        min_report_interval_s=0,
        max_failures=2,
        storage_path=storage,
    )
    fs = pafs.S3FileSystem(
        access_key="testing",
        secret_key="testing",
        region="us-east-1",
        endpoint_override=endpoint.split("://", 1)[1],
        scheme="http",
    )
    result = run(
        datasets("binary"),
        config=config,
        preprocessor=preprocessor("binary"),
        storage_filesystem=fs,
        round_hook=slow_first_attempt,
    )
    print(
        json.dumps(
            {
                "rounds": result.num_rounds,
                "resumed_from_round": result.resumed_from_round,
                "checkpoint_path": result.checkpoint_path,
                "num_workers": result.num_workers,
            }
        )
    )


if __name__ == "__main__":
    {"train": train}[sys.argv[1]](*sys.argv[2:])
