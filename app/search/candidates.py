"""A trial's best model so far, persisted while it trains: the choice after the search reads these, so a
trial stopped by ASHA, by the time budget, by Ctrl-C or by its process dying is a weaker candidate, not
a missing one.

Each trial writes under its own folder of the search's storage (local or ``s3://``): the model directory
of a version, then ``best.json`` naming it — metadata last, so a reader sees the previous version or the
new one, never half of one.
"""

from __future__ import annotations

import importlib
import json
import os
import posixpath
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

from app import atomic

CANDIDATE_DIR = "best"
POINTER = "best.json"
# Fault injection for tests: "module:function", called as hook(event, done=..., trial_id=...) in the
# trial's process between writing a model and the pointer naming it ("persist", or "final" for the
# trial's last model) and before the final report ("report").
HOOK_ENV = "AUTOML_TRIAL_HOOK"
# Between ASHA rungs a trial persists an improved model at most this often at first; once a persist is
# timed, at most PERSIST_SHARE of the trial's time goes to persisting.
PERSIST_EVERY_S = 3.0
PERSIST_SHARE = 0.1


class PersistPolicy:
    """When a trial persists its best model so far: at its first report, at an ASHA rung (the report
    there may stop it), and otherwise when it improved and the last persist is far enough behind for
    persisting to take at most ``share`` of the trial's time (as measured on its own saves)."""

    def __init__(
        self,
        *,
        every_s: float = PERSIST_EVERY_S,
        share: float = PERSIST_SHARE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.every_s, self.share, self.clock = every_s, share, clock
        self.last_time, self.cost_s = clock(), 0.0
        self.persisted: int | None = None  # best_iteration of the model persisted last

    def due(self, best_iteration: int, *, rung: bool) -> bool:
        if best_iteration == self.persisted:
            return False
        if self.persisted is None or rung:
            return True
        return self.clock() - self.last_time >= max(self.every_s, self.cost_s / self.share)

    def record(self, best_iteration: int, seconds: float) -> None:
        self.persisted, self.last_time, self.cost_s = best_iteration, self.clock(), seconds


def run_hook(event: str, **info: Any) -> None:
    """Call the test hook named by ``HOOK_ENV``, if any."""
    spec = os.environ.get(HOOK_ENV)
    if spec:
        module, name = spec.split(":")
        getattr(importlib.import_module(module), name)(event, **info)


class CandidateStore:
    """Where one trial persists: ``root`` on the pyarrow filesystem ``fs`` (None: the local disk)."""

    def __init__(self, root: str, *, fs: Any = None, trial_id: str = "") -> None:
        self.root, self.fs, self.trial_id = root, fs, trial_id
        self.local = fs is None or fs.type_name == "local"
        self.version: str | None = None
        self.count = 0

    @classmethod
    def for_trial(cls) -> CandidateStore:
        """The store of the Tune trial running in this process."""
        from ray import tune

        ctx = tune.get_context()
        storage = ctx.get_storage()
        root = posixpath.join(storage.trial_fs_path, CANDIDATE_DIR)
        return cls(root, fs=storage.storage_filesystem, trial_id=ctx.get_trial_id())

    def persist(self, result: Any, *, final: bool, extra: dict[str, Any] | None = None) -> float:
        """Save ``result`` (a ``TrainResult``) as this trial's candidate; the seconds it took."""
        from app.train.model import save_model

        started = time.monotonic()
        self.count += 1
        version = f"v{self.count:04d}-r{result.num_rounds}"
        path = posixpath.join(self.root, version)
        if self.local:
            save_model(result, path)
        else:
            import pyarrow.fs as pafs

            with tempfile.TemporaryDirectory(prefix="automl-candidate-") as tmp:
                save_model(result, tmp)
                pafs.copy_files(tmp, path, destination_filesystem=self.fs)
        run_hook("final" if final else "persist", done=result.num_rounds, trial_id=self.trial_id)
        pointer = {
            "version": version,
            "trial_id": self.trial_id,
            "family": result.family,
            "score": result.best_score,
            "metric": result.metric_name,
            "rounds": result.num_rounds,
            "best_iteration": result.best_iteration,
            "final": final,
            "deadline_reached": result.deadline_reached,
            "persist_s": round(time.monotonic() - started, 4),
            "unix": time.time(),
            **(extra or {}),
        }
        self._write_pointer(json.dumps(pointer, indent=2))
        previous, self.version = self.version, version
        if previous:
            self._remove(posixpath.join(self.root, previous))
        return time.monotonic() - started

    def _write_pointer(self, text: str) -> None:
        target = posixpath.join(self.root, POINTER)
        if self.local:
            atomic.write_text(target, text)
        else:  # an object store's put is atomic
            with self.fs.open_output_stream(target) as out:
                out.write(text.encode())

    def _remove(self, path: str) -> None:
        try:
            if self.local:
                shutil.rmtree(path, ignore_errors=True)
            else:
                self.fs.delete_dir(path)
        except OSError:  # a leftover version costs disk, not correctness: the pointer names the live one
            pass


def read(
    trial_path: str, fs: Any = None, *, reported: dict[str, Any] | None = None
) -> tuple[dict[str, Any], str] | None:
    """The persisted candidate of the trial whose folder is ``trial_path``: its pointer and the model's
    location (a local path, or a ``scheme://`` URI), or None when it persisted nothing. ``reported``:
    the trial's last report; a final one names the version it persisted (``candidate``), and its
    metrics are the pointer's, so nothing is read (one object store request fewer per trial)."""
    local = fs is None or fs.type_name == "local"
    root = posixpath.join(trial_path, CANDIDATE_DIR)
    if reported and reported.get("candidate"):
        pointer = {**reported, "version": reported["candidate"]}
    else:
        pointer = _pointer(posixpath.join(root, POINTER), fs if not local else None)
        if pointer is None:
            return None
    path = posixpath.join(root, pointer["version"])
    return pointer, (path if local else f"{fs.type_name}://{path}")


def _pointer(target: str, fs: Any) -> dict[str, Any] | None:
    try:
        if fs is None:
            with open(target) as f:
                return json.loads(f.read())
        with fs.open_input_stream(target) as f:
            return json.loads(f.read().decode())
    except (OSError, ValueError):
        return None
