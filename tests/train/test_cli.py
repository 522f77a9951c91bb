"""Entry points: ``automl train`` and ``jobs/train.py`` under ``ray job submit``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.data.synthetic import make_frame, write_parquet

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli-data") / "data"
    write_parquet(make_frame(2000, task="binary"), out, files=2)
    return out


def automl(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "train", *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_an_unknown_family_exits_2_naming_the_choices(data_dir, tmp_path):
    proc = automl(str(data_dir), "--target", "y", "--family", "forest", "--out", str(tmp_path / "m"))
    assert proc.returncode == 2
    assert "family" in proc.stderr and "xgboost" in proc.stderr


def test_a_missing_target_column_exits_2_naming_it(data_dir, tmp_path):
    proc = automl(str(data_dir), "--target", "nope", "--out", str(tmp_path / "m"))
    assert proc.returncode == 2
    assert "'nope'" in proc.stderr
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_automl_train_writes_a_model_directory(ray_head, data_dir, tmp_path):
    out = tmp_path / "model"
    args = [str(data_dir), "--target", "y", "--family", "lightgbm", "--rounds", "10", "--out", str(out)]
    proc = automl(*args, "--params", "num_leaves=15", env=ray_head.env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {"model.txt", "preprocessor.json", "metadata.json"} <= {p.name for p in out.iterdir()}
    assert json.loads((out / "metadata.json").read_text())["params"]["num_leaves"] == 15
    assert f"model: {out}" in proc.stdout


@pytest.mark.slow
def test_the_job_script_runs_under_ray_job_submit(ray_head, data_dir, tmp_path):
    out = tmp_path / "job-model"
    cmd = [
        str(Path(sys.executable).parent / "ray"),
        "job",
        "submit",
        "--address",
        ray_head.dashboard_url,
        "--working-dir",
        str(REPO),
        "--",
        "python",
        "jobs/train.py",
        str(data_dir),
        "--target",
        "y",
        "--rounds",
        "10",
        "--out",
        str(out),
    ]
    env = {**os.environ, **ray_head.env()}
    for _ in range(10):  # a busy head answers "No available agent" until its job agent has registered
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
        if proc.returncode == 0 or "No available agent" not in proc.stderr + proc.stdout:
            break
        time.sleep(6)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    summary = json.loads(next(line for line in reversed(proc.stdout.splitlines()) if line.startswith("{")))
    assert summary["family"] == "xgboost" and summary["num_rounds"] == 10
    assert (out / "model.ubj").exists()
