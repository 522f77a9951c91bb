"""The deployment guide's example 4, run as a script against the real server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from app.config import TrackingConfig
from app.tracking.tracker import MLflowTracker

EXAMPLE = Path(__file__).parents[2] / "examples" / "tracking_example.py"


def test_guide_example_4_runs_as_a_script(mlflow_url, unique_name, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE),
            "--tracking-uri",
            mlflow_url,
            "--experiment-name",
            unique_name,
            "--registered-model-name",
            unique_name,
            "--run-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])

    assert summary["offline"] is False
    assert summary["best_run_id"] == summary["run_id"]
    assert summary["registered_version"] == "1"
    client = MLflowTracker(TrackingConfig(tracking_uri=mlflow_url)).client
    run = client.get_run(summary["run_id"])
    assert run.data.params == {"max_depth": "8", "learning_rate": "0.1", "n_estimators": "50"}
    assert run.data.metrics == summary["scores"]
    assert client.get_model_version_by_alias(unique_name, "champion").run_id == summary["run_id"]
