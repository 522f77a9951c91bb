"""``python -m app._reaper DRIVER_PID PID:CREATE_TIME ...``: wait for the driver to exit, then kill the
listed processes still running (matched on their start time, so a reused pid is never touched)."""

from __future__ import annotations

import os
import sys
import time

POLL_S = 0.5


def main(argv: list[str]) -> None:
    import psutil

    driver = int(argv[0])
    targets = [(int(p), float(t)) for p, _, t in (a.partition(":") for a in argv[1:])]
    os.setpgrp()  # outlive a signal sent to the driver's process group long enough to clean up
    while os.getppid() == driver and psutil.pid_exists(driver):
        time.sleep(POLL_S)
    for pid, created in targets:
        try:
            proc = psutil.Process(pid)
            if proc.create_time() == created:
                proc.kill()
        except psutil.Error:
            continue


if __name__ == "__main__":
    main(sys.argv[1:])
