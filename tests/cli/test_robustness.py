"""Issue 16, one test per point, each through the ``automl`` command as a user meets it: numbers with
missing-value markers, failed reruns, Ctrl-C, damaged model files, bad UTF-8, dropped rows, processes
left behind, and which Ray a command uses."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from app import atomic
from app._reaper import descendants
from app.data import DatasetSpec
from app.data.io import inspect
from app.data.synthetic import make_frame
from app.testing.services import free_port
from app.testing.wait import wait_until

from .conftest import automl, features_frame, snapshot

REPO = Path(__file__).resolve().parents[2]


class Fit:
    """``automl fit`` in its own process (and process group), with a Ray of its own whose temp dir
    holds a stale ``ray_current_cluster``: an address nobody listens on, as after a crashed ``ray start``."""

    def __init__(self, tmp: Path, *args: str) -> None:
        self.ray_tmp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))  # short: Ray's socket paths
        (self.ray_tmp / "ray").mkdir()
        (self.ray_tmp / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{free_port()}")
        env = {**os.environ, "RAY_TMPDIR": str(self.ray_tmp), "PYTHONUNBUFFERED": "1"}
        env.pop("RAY_ADDRESS", None)
        self.out, self.err = open(tmp / "stdout.txt", "w+"), open(tmp / "stderr.txt", "w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "fit", *args],
            cwd=REPO,
            env=env,
            stdout=self.out,
            stderr=self.err,
            start_new_session=True,
        )

    def wait_for(self, condition, timeout_s: float = 300) -> None:
        """Until ``condition()`` holds; fails with the fit's stderr when the fit ends first or time is up."""
        try:
            wait_until(condition, timeout_s=timeout_s, what="the fit to get this far", proc=self.proc)
        except (RuntimeError, TimeoutError) as exc:
            pytest.fail(f"{exc}; stderr: {self.stderr[-3000:]}")

    def wait(self, timeout_s: float) -> int:
        return self.proc.wait(timeout=timeout_s)

    @property
    def stderr(self) -> str:
        self.err.flush()
        return Path(self.err.name).read_text()

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.out.close()
        self.err.close()
        shutil.rmtree(self.ray_tmp, ignore_errors=True)


def _data(tmp: Path, *, null_targets: int = 0, text_numbers: bool = False) -> Path:
    frame = make_frame(2_000, task="binary", seed=3)
    frame["y"] = frame["y"].astype("Int64")
    frame.loc[frame.index[:null_targets], "y"] = pd.NA
    if text_numbers:  # as a CSV reader types a column of numbers with a few "?" in it
        frame["x1"] = frame["x1"].round(4).astype(str)
        frame.loc[[1500, 1700, 1800, 1900], "x1"] = "?"
    path = tmp / "train.parquet"
    frame.to_parquet(path, index=False)
    return path


def _trial_checkpoint(run: Path):
    return lambda: any(run.glob("tune/*/*/best/best.json"))  # a trial's persisted model


def _last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory):
    """A fit stopped by one SIGINT during its search, once a trial had finished."""
    tmp = tmp_path_factory.mktemp("interrupted")
    run = tmp / "run"
    args = ["--target", "y", "--out", str(run), "--num-samples", "12", "--max-rounds", "60"]
    fit = Fit(tmp, str(_data(tmp)), *args)
    try:
        fit.wait_for(_trial_checkpoint(run))
        fit.proc.send_signal(signal.SIGINT)
        started = time.monotonic()
        code = fit.wait(timeout_s=120)
        seconds = time.monotonic() - started
        record = json.loads((run / "fit.json").read_text())  # before test 2 resumes the fit
        yield {"run": run, "code": code, "seconds": seconds, "stderr": fit.stderr, "record": record}
    finally:
        fit.close()


# 1 ----------------------------------------------------------------------------------------------------


def test_1_numbers_with_question_marks_stay_numeric_and_are_reported(tmp_path):
    frame = features_frame(2_000).round(4).astype(object)
    frame.loc[[1500, 1700, 1800, 1900], "x1"] = "?"
    frame["y"] = range(2_000)
    frame.to_csv(tmp_path / "data.csv", index=False)

    result = automl("prep", "csv-to-parquet", tmp_path / "data.csv", tmp_path / "pq", "--chunk-rows", "500")

    assert result.exit_code == 0, result.stderr
    assert "column 'x1': 4 cell(s) '?' read as missing; the column stays numeric" in result.stderr
    table = pq.read_table(tmp_path / "pq")
    assert table.schema.field("x1").type == pa.float64() and table["x1"].null_count == 4
    assert "x1" in inspect(DatasetSpec(uri=str(tmp_path / "pq"), target="y")).numeric


def test_1_an_output_directory_below_a_file_is_one_line_naming_it(tmp_path):
    (tmp_path / "data.csv").write_text("a,y\n1.5,0\n2.5,1\n")

    result = automl("prep", "csv-to-parquet", tmp_path / "data.csv", tmp_path / "data.csv" / "pq")

    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and str(tmp_path / "data.csv" / "pq") in line


def test_1_an_extra_missing_value_marker_is_taken_from_na_values(tmp_path):
    (tmp_path / "data.csv").write_text("a,y\n1.5,0\nunknown,1\n2.5,0\n")

    result = automl(
        "prep", "csv-to-parquet", tmp_path / "data.csv", tmp_path / "pq", "--na-values", "unknown"
    )

    assert result.exit_code == 0, result.stderr
    assert pq.read_table(tmp_path / "pq")["a"].to_pylist() == [1.5, None, 2.5]


def test_1_a_parquet_text_column_of_numbers_is_read_as_numbers(tmp_path):
    frame = features_frame(300).round(4).astype(str)
    frame.loc[[10, 20], "x2"] = "?"
    frame.loc[[30], "x2"] = "N/A"
    frame["y"] = [0, 1, 2] * 100
    frame.to_parquet(tmp_path / "data.parquet", index=False)

    info = inspect(DatasetSpec(uri=str(tmp_path / "data.parquet"), target="y"))

    assert info.numeric == ["x0", "x1", "x2"] and info.categorical == []
    assert info.text_numbers == {"x0": [], "x1": [], "x2": ["?", "N/A"]}


# 2 ----------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_2_a_failed_rerun_leaves_the_run_folder_and_resume_works(interrupted_run, tmp_path):
    run = interrupted_run["run"]
    before = snapshot(run)
    trials_before = len(pd.read_csv(run / "leaderboard.csv"))

    result = automl("fit", tmp_path / "missing.parquet", "--target", "y", "--out", run)

    assert result.exit_code == 2 and "missing.parquet" in result.stderr
    after = snapshot(run)
    before.pop("automl.log", None), after.pop("automl.log")  # the run's log records the failed attempt
    assert after == before
    assert "missing.parquet" in (run / "automl.log").read_text()
    resumed = Fit(tmp_path, "--resume", "--out", str(run))
    try:
        assert resumed.wait(timeout_s=400) == 0, resumed.stderr[-3000:]
    finally:
        resumed.close()
    assert json.loads((run / "fit.json").read_text())["result"]["interrupted"] is False
    assert len(pd.read_csv(run / "leaderboard.csv")) > trials_before


def test_2_an_interrupted_write_leaves_the_old_file_whole(tmp_path):
    path = tmp_path / "fit.json"
    path.write_text('{"old": true}')

    with pytest.raises(OSError), atomic.replacing(path) as tmp:
        tmp.write_text('{"new":')
        raise OSError("disk full")

    assert path.read_text() == '{"old": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["fit.json"]


# 3 ----------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_3_ctrl_c_during_the_search_saves_the_best_model_and_says_how_to_resume(interrupted_run):
    run = interrupted_run["run"]
    assert interrupted_run["code"] == 130, interrupted_run["stderr"][-3000:]
    assert interrupted_run["seconds"] < 60
    line = _last_line(interrupted_run["stderr"])
    assert line.startswith("error: interrupted:") and f"automl fit --resume --out {run}" in line
    assert "Tuner.restore" not in interrupted_run["stderr"]
    assert (run / "model" / "metadata.json").is_file() or (run / "model" / "ensemble.json").is_file()
    record = interrupted_run["record"]
    assert record["result"]["interrupted"] is True
    assert record["result"]["refit"] == {"done": False, "reason": "interrupted (Ctrl-C)"}
    assert (
        automl(
            "predict", run / "model", run.parent / "train.parquet", "--out", run.parent / "p.parquet"
        ).exit_code
        == 0
    )


@pytest.mark.slow
def test_3_ctrl_c_after_the_search_skips_the_stages_left(tmp_path):
    run = tmp_path / "run"
    args = ["--target", "y", "--out", str(run), "--num-samples", "6", "--max-rounds", "40"]
    fit = Fit(tmp_path, str(_data(tmp_path, null_targets=200, text_numbers=True)), *args)
    try:
        fit.wait_for(lambda: (run / "leaderboard.csv").exists())  # written when the search ends
        os.killpg(fit.proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
        assert fit.wait(timeout_s=60) == 130, fit.stderr[-3000:]
        stderr = fit.stderr
    finally:
        fit.close()
    assert f"automl fit --resume --out {run}" in _last_line(stderr)
    record = json.loads((run / "fit.json").read_text())
    assert record["result"]["refit"]["reason"] == "interrupted (Ctrl-C)"
    # 6: the rows without a target were counted, reported and recorded
    assert record["data"]["null_target_rows"] == {"rows": 200, "of": 2_000, "counted_in": "all rows"}
    assert "200 of 2,000 rows (all rows) have no 'y' value and are not used" in stderr
    assert "data.null_target_rows" in stderr
    # 1: a Parquet text column of numbers and "?" is used as numbers
    assert record["data"]["text_numbers"] == {"x1": ["?"]}
    assert "column 'x1' is text but holds numbers and ['?']" in stderr
    assert json.loads((run / "profile.json").read_text())["columns"]["x1"]["kind"] == "numeric"


@pytest.mark.slow
def test_3_a_second_ctrl_c_stops_at_once(tmp_path):
    run = tmp_path / "run"
    args = ["--target", "y", "--out", str(run), "--num-samples", "40"]
    fit = Fit(tmp_path, str(_data(tmp_path)), *args)
    try:
        fit.wait_for(_trial_checkpoint(run))
        fit.proc.send_signal(signal.SIGINT)
        # The second Ctrl-C as soon as the first is handled (signals do not queue: sent together, they are
        # one), while the search is still stopping — a fixed pause could outlast that on small data.
        deadline = time.monotonic() + 30
        while "Ctrl-C: stopping the search" not in fit.stderr:
            assert time.monotonic() < deadline and fit.proc.poll() is None, fit.stderr[-3000:]
            time.sleep(0.005)
        fit.proc.send_signal(signal.SIGINT)
        assert fit.wait(timeout_s=30) == 130, fit.stderr[-3000:]
        stderr = fit.stderr
    finally:
        fit.close()
    assert "stopped at once" in _last_line(stderr) and f"--out {run}" in _last_line(stderr)
    assert json.loads((run / "fit.json").read_text())["spec"]["target"] == "y"  # saved files are whole


# 4 ----------------------------------------------------------------------------------------------------


def test_4_a_truncated_lightgbm_model_is_one_line_not_a_crash(model_dir, tmp_path):
    model = model_dir("lightgbm")
    meta = json.loads((model / "metadata.json").read_text())
    assert set(meta["sha256"]) == {"model.txt", "preprocessor.json"}
    text = (model / "model.txt").read_bytes()
    (model / "model.txt").write_bytes(text[: len(text) // 3])
    features_frame(20).to_parquet(tmp_path / "new.parquet")

    # A subprocess: LightGBM used to abort the process (SIGABRT) on this file.
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "predict",
            str(model),
            str(tmp_path / "new.parquet"),
            "--out",
            str(tmp_path / "p.parquet"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [
        f"error: {model / 'model.txt'}: damaged or changed since it was saved (its SHA-256 differs from "
        "metadata.json)"
    ]
    assert not (tmp_path / "p.parquet").exists()


# 5 ----------------------------------------------------------------------------------------------------


def test_5_invalid_utf8_names_the_line_and_column_or_is_replaced_and_counted(tmp_path):
    src = tmp_path / "data.csv"
    src.write_bytes(b"id,name,y\n1,anna,0\n2,b\xe9a,1\n3,carl,0\n")

    strict = automl("prep", "csv-to-parquet", src, tmp_path / "pq")
    assert strict.exit_code == 2
    assert f"file {src}, column 'name': line 3: invalid UTF-8 byte 0xe9" in strict.stderr
    assert not (tmp_path / "pq").exists()

    replaced = automl("prep", "csv-to-parquet", src, tmp_path / "pq", "--encoding-errors", "replace")
    assert replaced.exit_code == 0, replaced.stderr
    assert "1 invalid UTF-8 sequence(s) replaced with U+FFFD" in replaced.stderr
    table = pq.read_table(tmp_path / "pq")
    assert table.schema.field("name").type == pa.string()
    assert table["name"].to_pylist() == ["anna", "b\ufffda", "carl"]


# 6 ----------------------------------------------------------------------------------------------------


def test_6_a_row_with_an_extra_field_is_named_by_its_line(tmp_path):
    rows = "".join(f"{i},{i * 2}\n" for i in range(10))
    (tmp_path / "data.csv").write_text("a,b\n" + rows + "10,20,30\n")

    result = automl("prep", "csv-to-parquet", tmp_path / "data.csv", tmp_path / "pq")

    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        == f"error: file {tmp_path / 'data.csv'}: line 12 has 3 fields, the header has 2"
    )


# 7 ----------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_7_after_kill_9_no_process_is_left_and_none_listened_beyond_loopback(tmp_path):
    run = tmp_path / "run"
    fit = Fit(tmp_path, str(_data(tmp_path)), "--target", "y", "--out", str(run), "--num-samples", "40")
    try:
        fit.wait_for(_trial_checkpoint(run))
        started = descendants(fit.proc.pid)
        listening = _listening(set(started))
        fit.proc.kill()  # kill -9 of `automl fit` alone
        fit.proc.wait()
        names = _left_running(started)
    finally:
        fit.close()
    assert listening and all(addr.rsplit(":", 1)[0] in LOOPBACK for addr in listening), listening
    assert not names, f"left running after kill -9: {names}"


@pytest.mark.slow
def test_7_a_finished_fit_ends_without_ray_s_shutdown_and_leaves_nothing_running_or_unsaved(tmp_path):
    """The command ends as soon as its output is printed (its time budget does not pay for Ray's shutdown
    and the interpreter's teardown); the reaper stops the local Ray, the log and fit.json are whole."""
    run = tmp_path / "run"
    fit = Fit(tmp_path, str(_data(tmp_path)), "--target", "y", "--out", str(run), "--num-samples", "3")
    try:
        fit.wait_for(_trial_checkpoint(run))
        started = descendants(fit.proc.pid)
        code = fit.wait(timeout_s=300)
        names = _left_running(started)
        stdout = Path(fit.out.name).read_text()
    finally:
        fit.close()
    assert code == 0, fit.stderr[-3000:]
    assert not names, f"left running after the fit ended: {names}"
    assert _last_line(stdout).startswith("wall time: ")  # every line printed, through a file
    record = json.loads((run / "fit.json").read_text())
    assert record["result"]["chosen"] and any((run / "model").iterdir())
    assert "fit done: " in (run / "automl.log").read_text()  # the log file flushed and closed


LOOPBACK = ("127.0.0.1", "[::ffff:127.0.0.1]", "[::1]")


def _listening(pids: set[int]) -> list[str]:
    """Local addresses of the TCP sockets these processes listen on (from ``ss``)."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    return [
        line.split()[3]
        for line in out.splitlines()
        if any(int(pid) in pids for pid in re.findall(r"pid=(\d+)", line))
    ]


def _left_running(started: dict[int, int], *, within_s: float = 15) -> dict[int, str]:
    """Those of ``started`` still running ``within_s`` from now, by name; each then killed, so that the
    test cleans up what it started whatever the outcome."""
    deadline = time.monotonic() + within_s
    while (alive := _alive(started)) and time.monotonic() < deadline:
        time.sleep(0.5)
    names = {pid: _name(pid) for pid in alive}
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    return names


def _alive(started: dict[int, int]) -> list[int]:
    """Those of ``started`` (pid: start time) still running and not zombies."""
    alive = []
    for pid, ticks in started.items():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat[19]) == ticks and stat[0] != "Z":
            alive.append(pid)
    return alive


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


# 8 ----------------------------------------------------------------------------------------------------


def test_8_an_unreachable_address_is_one_line_within_seconds(tmp_path):
    _data(tmp_path)
    address = f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "fit",
            str(tmp_path / "train.parquet"),
            "--target",
            "y",
            "--out",
            str(tmp_path / "run"),
            "--ray-address",
            address,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: Ray cluster at {address!r} is not reachable (Connection refused); check --ray-address, "
        "ray.address or RAY_ADDRESS, or unset them to start a local Ray"
    ]
    assert time.monotonic() - started < 30  # the interpreter and imports included
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_8_with_an_address_local_only_options_are_not_passed(ray_head):
    code = (
        "from app.cluster import connect; from app.config import RayConfig; import ray; "
        f"connect(RayConfig(address={ray_head.address!r}, num_cpus=1, num_gpus=0)); "
        "print(int(ray.cluster_resources()['CPU']))"
    )
    env = {**os.environ, **ray_head.env()}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "2"  # the head's CPUs, not the 1 asked for a local Ray
