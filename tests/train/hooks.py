"""Round hooks that run inside Ray Train workers (importable by the workers as ``tests.train.hooks``)."""

from __future__ import annotations

import os
import signal

KILL_AT_ROUND = 25


def kill_first_attempt(done: int, *, resumed: bool, rank: int) -> None:
    """SIGKILL this worker process at round 25 of a run that did not start from a checkpoint.

    Only checkpoints the controller has registered are restored, and it takes reports off the workers'
    queues at its own pace (every ``RAY_TRAIN_HEALTH_CHECK_INTERVAL_S``). So the kill waits until the
    controller has processed every report made so far: ``ray.train.get_all_reported_checkpoints`` in
    ``COMMITTED`` mode blocks until then (each of this worker's reports, its checkpoint uploaded and
    registered), rather than a fixed pause that a loaded machine can outlast.
    """
    if done == KILL_AT_ROUND and not resumed and rank == 0:
        import ray.train

        ray.train.get_all_reported_checkpoints(
            consistency_mode=ray.train.CheckpointConsistencyMode.COMMITTED, timeout_s=30
        )
        os.kill(os.getpid(), signal.SIGKILL)
