"""What a command shows in the terminal: one line per stage, the libraries' output in the run's log file
(in the terminal too with ``--verbose``), an unexpected error as one line with its trace in the log."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer

from app import _console as console
from app.search.progress import SearchProgress

ROOT = Path(__file__).resolve().parents[2]

# A command's start, then a record from each library logger that prints to the terminal by default.
LIBRARIES_LOG = """
import logging, sys, warnings
from pathlib import Path
from app import _console as console
console.set_verbose(sys.argv[2] == "verbose")
console.start(Path(sys.argv[1]))
import ray.data  # as a command then does: with --verbose, Ray's own terminal handlers stay
logging.getLogger("ray").info("ray says hello")
logging.getLogger("ray.data._internal.execution.streaming_executor").info("Execution plan of Dataset x")
import optuna
optuna.logging.get_logger("optuna").info("A new study created")
warnings.warn("a library warning")
logging.getLogger("app.train.api").warning("the user should see this")
"""


def _run(tmp_path: Path, mode: str) -> tuple[subprocess.CompletedProcess, str]:
    log = tmp_path / mode / "automl.log"
    proc = subprocess.run(
        [sys.executable, "-c", LIBRARIES_LOG, str(log), mode],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc, log.read_text()


def test_library_output_goes_to_the_log_file_and_only_the_projects_warnings_to_the_terminal(tmp_path):
    proc, log = _run(tmp_path, "quiet")
    for said in ("ray says hello", "Execution plan of Dataset x", "A new study created", "a library warning"):
        assert said in log
        assert said not in proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == ["warning: the user should see this"]


def test_with_verbose_the_libraries_print_as_usual_and_the_log_file_still_fills(tmp_path):
    proc, log = _run(tmp_path, "verbose")
    for said in ("ray says hello", "Execution plan of Dataset x", "A new study created"):
        assert said in proc.stderr and said in log
    assert "a library warning" in log


def test_an_unexpected_error_is_one_line_with_its_trace_in_the_log_file(tmp_path, monkeypatch, capsys):
    app = typer.Typer()

    @app.command()
    def boom() -> None:
        console.start(tmp_path / "run" / console.LOG_NAME, uses_ray=False)
        raise OSError("disk on fire\nsecond line")

    monkeypatch.setattr(sys, "argv", ["automl"])
    with pytest.raises(SystemExit) as exit_:
        console.main(app)
    assert exit_.value.code == 1
    log = tmp_path / "run" / console.LOG_NAME
    assert capsys.readouterr().err.splitlines() == [
        f"error: OSError: disk on fire second line (trace in {log})"
    ]
    assert "Traceback (most recent call last)" in log.read_text() and "boom" in log.read_text()


def test_a_stage_is_one_line_off_a_terminal_and_redrawn_in_place_on_one(capsys):
    ticks = iter([0.0, 2.5, 4.0])
    stages = console.Stages(tty=False, clock=lambda: next(ticks))
    stages("search", "1/4 trials", final=False)
    stages("search", "4 trials, 4 with a model")
    assert capsys.readouterr().err == "search   4 trials, 4 with a model  (2.5 s)\n"
    tty = console.Stages(tty=True, clock=lambda: 0.0)
    tty("search", "1/4 trials", final=False)
    tty("search", "done")
    assert capsys.readouterr().err == "\r\x1b[Ksearch   1/4 trials\r\x1b[Ksearch   done  (0.0 s)\n"


@dataclass
class _Trial:
    status: str


def test_the_search_line_counts_finished_trials_and_keeps_the_best_score_and_the_time_left():
    lines = []
    progress = SearchProgress(
        lambda stage, text, final: lines.append((stage, text, final)),
        metric="logloss",
        mode="min",
        trials=6,
        deadline=100.0,
        clock=lambda: 58.4,
    )
    trials = [_Trial("TERMINATED"), _Trial("RUNNING"), _Trial("ERROR")]
    progress.on_trial_result(1, trials, trials[1], {"score": 0.5})
    progress.on_trial_result(2, trials, trials[1], {"score": 0.7})
    assert lines[-1] == ("search", "2/6 trials, best logloss 0.50000, 42 s left", False)
    unlimited = SearchProgress(print, metric="auc", mode="max", trials=sys.maxsize, deadline=None)
    assert unlimited.line(trials) == "2 trials"
