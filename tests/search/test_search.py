"""The search: all families on the leaderboard, ASHA stops bad trials, budget, ensemble, predict."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from app.data.synthetic import make_frame, write_parquet
from app.search import AutoMLEngine, RayTuneOptimizer, RayTuneSettings
from app.search.ensemble import select
from app.testing.wait import wait_until
from app.train import load_model
from app.train.metrics import get_metric

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fitted(ray_session, tmp_path_factory):
    """One small search over all three families (Optuna + ASHA), shared by the tests that inspect it."""
    out = tmp_path_factory.mktemp("fit")
    frame = make_frame(2_000, task="binary", seed=5)
    settings = RayTuneSettings(
        num_samples=12,
        max_rounds=80,
        report_every=5,
        grace_period=1,
        early_stopping_rounds=15,
        ensemble_size=5,
    )
    result = AutoMLEngine(RayTuneOptimizer(settings), out_dir=out).fit(frame.drop(columns=["y"]), frame["y"])
    return result, frame


def test_leaderboard_has_every_family_and_is_saved(fitted):
    result, _ = fitted
    board = result.leaderboard
    assert set(board.family) == {"xgboost", "lightgbm", "catboost"}
    assert len(board) == 12
    saved = pd.read_csv(result.out_dir / "leaderboard.csv")
    assert list(saved.columns) == [
        "rank",
        "trial_id",
        "family",
        "score",
        "cv_score",
        "rounds",
        "rows",
        "train_time_s",
        "status",
        "trainer",
        "refit",
        "params",
    ]
    assert len(json.loads((result.out_dir / "leaderboard.json").read_text())) == 12
    assert board.score.is_monotonic_increasing  # logloss: best first
    assert all(json.loads(p) for p in board.params)


def test_fit_is_tracked_with_the_validation_rows_as_read(fitted):
    """The report's rows are the validation split's raw rows, kept while encoding (no second read)."""
    result, frame = fitted
    assert result.tracking.get("run_id") and "error" not in result.tracking
    rows = pd.read_parquet(next(result.out_dir.glob("report/**/valid.parquet")))
    assert 0 < len(rows) <= 2_000
    assert set(frame.columns) <= set(rows.columns)
    matched = rows.merge(frame, on="x0", suffixes=("", "_given"))
    assert len(matched) == len(rows)
    assert (matched["y"] == matched["y_given"]).all()


def test_asha_stops_bad_trials_with_fewer_rounds_than_survivors(fitted):
    board = fitted[0].leaderboard
    stopped = board[board.status == "stopped"]
    completed = board[board.status == "completed"]
    assert len(stopped) >= 1
    assert stopped.rounds.max() < completed.rounds.max()


def test_ensemble_is_never_worse_than_the_best_single_model(fitted):
    result, frame = fitted
    assert result.ensemble_score <= result.best_score + 1e-12
    assert (result.model_dir / ("ensemble.json" if result.chosen == "ensemble" else "metadata.json")).exists()
    model = load_model(result.model_dir)
    proba = model.predict_proba(frame.head(50))
    assert proba.shape == (50, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    accuracy = (model.predict(frame) == frame.y).mean()
    assert accuracy > 0.85


def test_greedy_selection_starts_from_the_best_single_model():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    preds = []
    for noise in (0.3, 0.5, 0.8):
        p = np.clip(y + rng.normal(scale=noise, size=500), 0.01, 0.99)
        preds.append(np.column_stack([1 - p, p]))
    weights, ens = select(preds, y, metric="logloss", maximize=False)
    assert ens <= min(get_metric("logloss").score(y, p) for p in preds)
    assert weights.sum() == pytest.approx(1.0)
    _, auc = select(preds, y, metric="auc", maximize=True)
    assert auc >= max(get_metric("auc").score(y, p) for p in preds)


def test_predict_cli_writes_predictions_and_probabilities_in_row_order(fitted, tmp_path):
    result, frame = fitted
    rows = make_frame(300, task="binary", seed=9).drop(columns=["y"])
    write_parquet(rows, tmp_path / "new", files=3)
    out = tmp_path / "preds.parquet"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "predict",
            str(result.model_dir),
            str(tmp_path / "new"),
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    preds = pq.read_table(out).to_pandas()
    assert list(preds.columns) == ["prediction", "proba_0", "proba_1"]
    assert len(preds) == 300
    expected = load_model(result.model_dir).predict_proba(rows)
    np.testing.assert_allclose(preds[["proba_0", "proba_1"]].to_numpy(), expected, rtol=1e-5)


def test_predict_cli_names_missing_columns(fitted, tmp_path):
    write_parquet(pd.DataFrame({"other": [1.0, 2.0]}), tmp_path / "bad", files=1)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "predict",
            str(fitted[0].model_dir),
            str(tmp_path / "bad"),
            "--out",
            str(tmp_path / "p.parquet"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "missing" in proc.stderr and "x0" in proc.stderr


def test_settings_reject_unknown_families_and_fields():
    with pytest.raises(ValidationError, match="families"):
        RayTuneSettings(families=["randomforest"])
    with pytest.raises(ValidationError, match="extra"):
        RayTuneSettings(num_trials=3)


@pytest.mark.slow
def test_resume_after_the_driver_is_killed_keeps_finished_trials(ray_head, tmp_path):
    data = tmp_path / "data"
    write_parquet(make_frame(1_500, task="binary", seed=4), data, files=2)
    out = tmp_path / "run"
    env = {**os.environ, **ray_head.env()}
    args = [
        sys.executable,
        "-m",
        "app.cli",
        "fit",
        str(data),
        "--target",
        "y",
        "--out",
        str(out),
        "--num-samples",
        "8",
        "--max-concurrent",
        "1",
        "--scheduler",
        "fifo",
        "--search",
        "random",
        "--max-rounds",
        "150",
        "--families",
        "catboost",
    ]
    driver = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    finished_before = wait_until(
        lambda: len(finished := _finished_trials(out)) >= 2 and finished,
        timeout_s=240,
        interval_s=0.5,
        what="2 finished trials before the driver is killed",
        proc=driver,  # a fit that ended first cannot be interrupted
    )
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait(timeout=30)
    resumed = subprocess.run(
        [sys.executable, "-m", "app.cli", "fit", "--resume", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    board = pd.read_csv(out / "leaderboard.csv")
    assert len(board) == 8
    kept = board.set_index("trial_id")
    for trial_id, trial_score in finished_before.items():
        assert kept.loc[trial_id, "status"] == "completed"
        assert kept.loc[trial_id, "score"] == pytest.approx(trial_score)


def _finished_trials(out: Path) -> dict[str, float]:
    """Trial id -> score of the trials whose ``result.json`` says they finished."""
    finished = {}
    for result in (out / "tune" / "search").glob("*/result.json"):
        for line in result.read_text().splitlines():
            row = json.loads(line)
            if row.get("finished"):
                finished[row["trial_id"]] = row["score"]
    return finished


def test_guide_example_1_runs(ray_session, tmp_path):
    # Its own process: the example starts (or joins) Ray itself, as a user's script would.
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.run(
        [sys.executable, "examples/guide_example1.py", "--small", "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "best logloss" in proc.stdout
    assert (tmp_path / "leaderboard.csv").exists()
