"""Round hooks that run inside Ray Train workers (importable by the workers as ``tests.train.hooks``)."""

from __future__ import annotations

import os
import signal
import time

KILL_AT_ROUND = 25


def kill_first_attempt(done: int, *, resumed: bool, rank: int) -> None:
    """SIGKILL this worker process at round 25 of a run that did not start from a checkpoint.

    It waits a moment first so that the controller has taken the earlier checkpoints off the
    report queue: only checkpoints the controller registered are restored.
    """
    if done == KILL_AT_ROUND and not resumed and rank == 0:
        time.sleep(2.0)
        os.kill(os.getpid(), signal.SIGKILL)
