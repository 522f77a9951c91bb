"""The run report: PNGs and one HTML page that reflect the run, rebuilt by ``automl report RUN_DIR``."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from app.data.encode import DATE_PARTS
from app.data.synthetic import make_frame
from app.tracking.report import build_report

from .conftest import histories, train_model_dir

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _leaderboard() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "trial": [f"t{i}" for i in range(6)],
            "family": ["xgboost", "xgboost", "lightgbm", "lightgbm", "catboost", "catboost"],
            "logloss": [0.21, 0.25, 0.22, 0.30, 0.24, 0.23],
        }
    )


@pytest.mark.parametrize("family", ["xgboost", "lightgbm", "catboost"])
def test_treeshap_importance_ranks_the_planted_feature_first(family, tmp_path):
    model_dir = train_model_dir(tmp_path / "model", family=family)
    curves = dict(zip(["t0", "t1", "t2"], histories(3, rounds=30), strict=True))

    report = build_report(
        tmp_path,
        model_dir=model_dir,
        valid=make_frame(600, seed=1),
        leaderboard=_leaderboard(),
        histories=curves,
        families={
            "lightgbm": {"trials": 2, "statuses": {"completed": 2}, "best_rank": 1, "best_score": 0.22}
        },
    )

    assert next(iter(report.importance)) == "x0"  # make_frame's strongest signal
    date_parts = {f"signup__{p}" for p in DATE_PARTS}  # one entry per model column
    assert set(report.importance) == {"x0", "x1", "x2", "x3", "x4", "x5", "city", "signup", *date_parts}
    assert set(report.images) == {"importance", "learning_curves", "leaderboard", "roc_pr", "confusion"}
    for path in report.images.values():
        assert path.parent == tmp_path / "report" and path.read_bytes()[:8] == PNG_MAGIC
    page = report.html.read_text()
    assert report.html == tmp_path / "report" / "report.html"
    assert all(f"src='{p.name}'" in page for p in report.images.values())
    assert "<h2>model families</h2>" in page and "<td>lightgbm</td><td>2</td><td>1</td>" in page
    assert report.metrics["auc"] > 0.9


def test_an_ensemble_report_weighs_its_members_treeshap(tmp_path):
    import numpy as np

    from app.train.ensemble import save_ensemble

    members = [
        train_model_dir(tmp_path / "ens" / f"m{i}", family=f) for i, f in enumerate(("xgboost", "catboost"))
    ]
    save_ensemble(
        members, np.array([0.5, 0.5]), tmp_path / "ens", info={"metric": "logloss", "task": "binary"}
    )

    report = build_report(tmp_path, model_dir=tmp_path / "ens", valid=make_frame(400, seed=1))

    assert next(iter(report.importance)) == "x0"
    assert "xgboost ×0.5, catboost ×0.5" in report.html.read_text()
    assert {"importance", "roc_pr", "confusion"} <= set(report.images)


def test_regression_report_has_residuals_and_the_cli_regenerates_it(tmp_path):
    import typer

    from app.tracking.cli import report_command

    model_dir = train_model_dir(tmp_path / "model", family="lightgbm", task="regression")
    first = build_report(tmp_path, model_dir=model_dir, valid=make_frame(400, task="regression", seed=1))
    assert {"residuals", "importance", "learning_curves"} <= set(first.images)
    assert "roc_pr" not in first.images and set(first.metrics) == {"rmse", "mae"}
    for path in [*first.images.values(), first.html]:
        path.unlink()

    app = typer.Typer()
    app.command()(report_command)
    result = CliRunner().invoke(app, [str(tmp_path)])

    assert result.exit_code == 0, result.output
    assert first.html.is_file() and all(p.is_file() for p in first.images.values())
    assert str(first.html) in result.output


def test_report_is_logged_as_run_artifacts(tracker, xgb_dir, holdout, tmp_path):
    run_id = tracker.start_run("automl")
    report = build_report(tmp_path, model_dir=xgb_dir, valid=holdout, tracker=tracker)
    tracker.end_run()

    logged = {a.path for a in tracker.client.list_artifacts(run_id, "report")}
    expected = {f"report/{p.name}" for p in [*report.images.values(), report.html]} | {
        "report/shap_importance.json"
    }
    assert logged == expected
