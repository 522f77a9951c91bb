"""``automl train`` as a command (``jobs/train.py`` under ``ray job submit``: tests/jobs/test_jobs.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
def test_the_config_files_train_section_holds_where_no_option_is_given(ray_head, data_dir, tmp_path):
    # The options' defaults used to override the file: train.family in automl.yaml was never used.
    config = tmp_path / "automl.yaml"
    config.write_text("train: {family: catboost, num_boost_round: 7}\n")
    out = tmp_path / "model"
    proc = automl(
        str(data_dir), "--target", "y", "--config", str(config), "--out", str(out), env=ray_head.env()
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["family"] == "catboost" and meta["num_rounds"] <= 7
    assert (out / "model.cbm").exists()
