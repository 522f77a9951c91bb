"""``jobs/_entry.py`` without a cluster: the CLI's own parser, the summary line, the job metadata, and the
one-line refusal on a Python without the project's dependencies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "jobs"))

import _entry  # noqa: E402


def test_job_info_is_the_submission_id_and_the_metadata_given_at_submission():
    config = {"metadata": {"job_submission_id": "train-1", "job_name": "train-1", "stage": "train"}}
    info = _entry.job_info({_entry.JOB_CONFIG_ENV: json.dumps(config)})
    assert info == {"submission_id": "train-1", "metadata": {"stage": "train"}}
    assert _entry.job_info({}) == {}


def test_the_summary_names_the_stage_and_makes_paths_strings():
    record = _entry.summary_record("prep", {"out_dir": Path("/x/y"), "rows": 3}, environ={})
    assert record == {"stage": "prep", "out_dir": "/x/y", "rows": 3}


def test_invoke_runs_the_command_with_its_own_parser_and_returns_its_result(tmp_path):
    csv = tmp_path / "a.csv"
    csv.write_text("x,y\n1,0\n2,1\n3,0\n")
    results, params = _entry.invoke(["prep", "csv-to-parquet"], [str(csv), str(tmp_path / "out")])
    assert [r.rows for r in results] == [3]
    assert params["outdir"] == str(tmp_path / "out") and params["chunk_rows"] == 1_000_000


def test_an_option_the_command_lacks_exits_2_as_the_cli_does(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        _entry.invoke(["train"], [str(tmp_path), "--target", "y", "--no-such-option"])
    assert exc.value.code == 2
    assert "--no-such-option" in capsys.readouterr().err


def test_a_python_without_the_dependencies_is_one_line_saying_how_to_submit():
    # -S: no site-packages, as a cluster's bare system Python
    proc = subprocess.run(
        [sys.executable, "-S", "jobs/train.py", "data", "--target", "y"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "uv run --frozen --extra all python jobs/" in proc.stderr and "No module named" in proc.stderr
