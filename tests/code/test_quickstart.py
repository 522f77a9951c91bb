"""The README's main job, end to end, as a user runs it."""

import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quickstart_runs_every_stage(tmp_path):
    out = tmp_path / "qs"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "quickstart",
            "--rows",
            "2000",
            "--time-budget",
            "40",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in (
        "profile.json",
        "preprocessor.json",
        "model/metadata.json",
        "search/leaderboard.csv",
        "search/report/report.html",
        "search/mlflow.db",
    ):
        assert (out / name).exists(), name
    assert "search leaderboard" in proc.stdout and "MLflow UI" in proc.stdout
    assert "served: 4 requests" in proc.stdout and "1 answered from the cache" in proc.stdout
    assert "API docs were at http://127.0.0.1:" in proc.stdout
    preds = pq.read_table(out / "predictions.parquet")
    assert preds.num_rows == 1000 and "proba_1" in preds.column_names
    # What the terminal shows: a line per stage and the results, the libraries' output in the log file.
    stages = [line.split()[0] for line in proc.stderr.splitlines() if line.strip()]
    assert stages == ["data", "train", "data", "search", "predict", "serve"], proc.stderr
    assert len((proc.stdout + proc.stderr).splitlines()) <= 40, proc.stdout + proc.stderr
    # No raw library line among the results: Ray prints errors the GCS publishes (a failed actor task,
    # "(raylet) Task ServeController.graceful_shutdown failed ...") on the driver's stdout.
    raw = [line for line in proc.stdout.splitlines() if line.startswith("(") or "Task " in line]
    assert not raw, raw
    log = (out / "automl.log").read_text()
    for chatter in ("Started a local Ray instance", "Execution plan of Dataset", "A new study created"):
        assert chatter in log and chatter not in proc.stdout + proc.stderr
