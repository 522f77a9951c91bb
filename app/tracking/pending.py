"""The offline journal: what a run would have logged to MLflow, kept under ``RUN_DIR/mlruns-pending/`` as
JSON and files while the tracking server is unreachable, and ``sync_pending`` that uploads it later.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app import atomic

if TYPE_CHECKING:
    import pandas as pd

    from app.tracking.tracker import MLflowTracker

PENDING_DIR = "mlruns-pending"
RUN_FILE = "run.json"
LOCAL_PREFIX = "offline-"


def pending_root(run_dir: str | Path) -> Path:
    return Path(run_dir) / PENDING_DIR


class PendingRun:
    """One run's journal: ``run.json`` (tags, params, metrics with steps and timestamps, status, the
    artifacts and models to upload) plus the files themselves under ``artifacts/`` and ``models/``."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path, self.data = path, data

    @classmethod
    def create(
        cls,
        run_dir: str | Path,
        *,
        experiment_name: str,
        run_name: str | None,
        parent_id: str | None,
        remote_run_id: str | None = None,
        tags: dict[str, str] | None = None,
        start_time_ms: int | None = None,
    ) -> PendingRun:
        local_id = LOCAL_PREFIX + uuid.uuid4().hex[:16]
        path = pending_root(run_dir) / local_id
        path.mkdir(parents=True, exist_ok=False)
        data = {
            "local_id": local_id,
            "seq": time.time_ns(),
            "experiment_name": experiment_name,
            "remote_run_id": remote_run_id,
            "parent_id": parent_id,
            "run_name": run_name,
            "start_time": start_time_ms or _now_ms(),
            "end_time": None,
            "status": "RUNNING",
            "tags": dict(tags or {}),
            "params": {},
            "metrics": [],
            "artifacts": [],
            "models": [],
            "synced": False,
        }
        run = cls(path, data)
        run.save()
        return run

    @classmethod
    def load(cls, path: Path) -> PendingRun:
        return cls(path, json.loads((path / RUN_FILE).read_text()))

    @property
    def local_id(self) -> str:
        return self.data["local_id"]

    @property
    def run_id(self) -> str:
        """The id callers hold: the remote run's when the run started online, else the local one."""
        return self.data["remote_run_id"] or self.local_id

    def add_batch(self, *, params: dict[str, str], metrics: list[tuple], tags: dict[str, str]) -> None:
        self.data["params"].update(params)
        self.data["tags"].update(tags)
        self.data["metrics"].extend([list(m) for m in metrics])
        self.save()

    def add_artifact(self, local_path: str | Path, artifact_path: str | None) -> None:
        src = Path(local_path)
        dest = self.path / "artifacts" / (artifact_path or "") / src.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dest)
        rel = str(dest.relative_to(self.path))
        self.data["artifacts"].append({"file": rel, "artifact_path": artifact_path, "is_dir": src.is_dir()})
        self.save()

    def add_model(
        self,
        members: list[Path],
        *,
        weights: list[float] | None,
        name: str,
        registered_model_name: str | None,
        input_example: pd.DataFrame | None,
    ) -> None:
        base = self.path / "models" / name
        copies = []
        for i, member in enumerate(members):
            dest = base / f"member_{i}"
            shutil.copytree(member, dest, dirs_exist_ok=True)
            copies.append(str(dest.relative_to(self.path)))
        example = None
        if input_example is not None:
            example_path = base / "input_example.parquet"
            input_example.to_parquet(example_path, index=False)
            example = str(example_path.relative_to(self.path))
        self.data["models"].append(
            {
                "name": name,
                "members": copies,
                "weights": weights,
                "registered_model_name": registered_model_name,
                "input_example": example,
            }
        )
        self.save()

    def finish(self, status: str, end_time_ms: int | None = None) -> None:
        self.data["status"] = status
        self.data["end_time"] = end_time_ms or _now_ms()
        self.save()

    def summary(self) -> str:
        d = self.data
        return (
            f"{len(d['params'])} params, {len(d['metrics'])} metric values, {len(d['tags'])} tags, "
            f"{len(d['artifacts'])} artifacts, {len(d['models'])} models"
        )

    def save(self) -> None:
        atomic.write_json(self.path / RUN_FILE, self.data, indent=1, default=str)


def list_pending(run_dir: str | Path, *, include_synced: bool = False) -> list[PendingRun]:
    """Journals under ``RUN_DIR/mlruns-pending/``, oldest first (so parents come before children)."""
    root = pending_root(run_dir)
    if not root.is_dir():
        return []
    runs = [PendingRun.load(p) for p in root.iterdir() if (p / RUN_FILE).is_file()]
    runs = [r for r in runs if include_synced or not r.data["synced"]]
    return sorted(runs, key=lambda r: r.data["seq"])


@dataclass
class SyncReport:
    """What ``sync_pending`` uploaded: local id -> MLflow run id, and the counts."""

    runs: dict[str, str] = field(default_factory=dict)
    metrics: int = 0
    artifacts: int = 0
    models: int = 0


def sync_pending(
    run_dir: str | Path, tracker: MLflowTracker, *, experiment_name: str | None = None
) -> SyncReport:
    """Upload every journal under ``RUN_DIR/mlruns-pending/`` through ``tracker``'s client.

    Runs that started offline are created (children under their uploaded parent) in the experiment
    they were meant for, or ``experiment_name``; runs that went offline midway get the rest of their
    data. Each journal is marked synced once uploaded, so a second call uploads nothing twice.

    Example:
        >>> tracker = MLflowTracker(TrackingConfig(tracking_uri=url))  # doctest: +SKIP
        >>> sync_pending("runs/r1", tracker).runs  # doctest: +SKIP

    Long on purpose: each journal is replayed in order (run, batches, artifacts, models, end), and the
    local-to-remote run id map is built as it goes.
    """
    from mlflow.entities import Metric, Param, RunTag

    from app.tracking.tags import PARENT_TAG

    tracker.require_reachable()
    client = tracker.client
    report = SyncReport()
    ids = {r.local_id: r.data["remote_run_id"] for r in list_pending(run_dir, include_synced=True)}
    for run in list_pending(run_dir):
        d = run.data
        remote = d["remote_run_id"]
        if remote is None:
            tags = {**d["tags"], "automl.synced_from": run.local_id}
            parent = ids.get(d["parent_id"], d["parent_id"]) if d["parent_id"] else None
            if parent:
                tags[PARENT_TAG] = parent
            experiment = tracker.experiment_id_for(experiment_name or d["experiment_name"])
            remote = client.create_run(
                experiment, start_time=d["start_time"], tags=tags, run_name=d["run_name"]
            ).info.run_id
        ids[run.local_id] = remote
        metrics = [Metric(k, float(v), int(ts), int(step)) for k, v, ts, step in d["metrics"]]
        params = [Param(k, v) for k, v in d["params"].items()]
        tags = [RunTag(k, v) for k, v in d["tags"].items()] if d["remote_run_id"] else []
        tracker.log_batch_chunked(remote, metrics=metrics, params=params, tags=tags)
        for art in d["artifacts"]:
            src = run.path / art["file"]
            if art.get("is_dir"):
                sub = "/".join(p for p in (art["artifact_path"], src.name) if p)
                client.log_artifacts(remote, str(src), sub)
            else:
                client.log_artifact(remote, str(src), art["artifact_path"])
        for model in d["models"]:
            import pandas as pd

            example = pd.read_parquet(run.path / model["input_example"]) if model["input_example"] else None
            tracker.log_model_to_run(
                remote,
                [run.path / m for m in model["members"]],
                weights=model["weights"],
                name=model["name"],
                registered_model_name=model["registered_model_name"],
                input_example=example,
            )
        if d["status"] != "RUNNING":
            client.set_terminated(remote, d["status"], end_time=d["end_time"])
        d["remote_run_id"], d["synced"] = remote, True
        run.save()
        report.runs[run.local_id] = remote
        report.metrics += len(metrics)
        report.artifacts += len(d["artifacts"])
        report.models += len(d["models"])
    return report


def _now_ms() -> int:
    return int(time.time() * 1000)
