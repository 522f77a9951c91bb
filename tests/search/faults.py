"""Trial hooks for the anytime tests (``app.search.candidates.HOOK_ENV``), run inside the trials'
processes: a final save that outlasts the search, and a trial process killed mid-training."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

MARKS_ENV = "AUTOML_TEST_MARKS"
KILLED = "killed"


def slow_final_save(event: str, *, done: int, trial_id: str) -> None:
    """Every trial's last model is written, then its save hangs before the pointer naming it: Tune's
    time budget stops the trials while they save."""
    if event == "final":
        time.sleep(600)


def kill_at_second_persist(event: str, *, done: int, trial_id: str) -> None:
    """SIGKILL the first trial process that persists a second model, between writing that model and
    its pointer; the first persisted model's round count is left in ``MARKS_ENV``/``TRIAL_ID``."""
    if event != "persist":
        return
    marks = Path(os.environ[MARKS_ENV])
    first = marks / trial_id
    if not first.exists():
        first.write_text(str(done))
        return
    try:
        fd = os.open(marks / KILLED, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:  # another trial was killed already
        return
    os.write(fd, trial_id.encode())
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)
