"""``automl models list|promote|rollback`` and ``automl track sync`` on a real server, through Typer."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from app.config import TrackingConfig
from app.testing.services import free_port
from app.tracking.cli import models_app, report_command, track_app
from app.tracking.registry import CHAMPION, ModelRegistry
from app.tracking.tracker import MLflowTracker, TrackingOfflineWarning

from .conftest import register


@pytest.fixture(scope="module")
def cli() -> typer.Typer:
    """The sub-apps mounted the way ``app/cli.py`` mounts them."""
    app = typer.Typer()
    app.add_typer(models_app, name="models")
    app.add_typer(track_app, name="track")
    app.command("report")(report_command)
    return app


def invoke(cli, *args: str):
    return CliRunner().invoke(cli, list(args))


def test_models_promote_list_and_rollback(cli, mlflow_url, unique_name, logged_pipelines):
    registry = ModelRegistry(tracking_uri=mlflow_url)
    for family in ("xgboost", "lightgbm"):
        register(registry, unique_name, logged_pipelines, family)
    uri = ("--tracking-uri", mlflow_url)

    nothing_to_compare = invoke(cli, "models", "promote", unique_name, "--metric", "auc", *uri)
    assert nothing_to_compare.exit_code == 2
    assert (
        f"error: {unique_name}: v2 is compared with champion v1: give --holdout FILE --target COLUMN"
        in nothing_to_compare.output
    )

    refused = invoke(
        cli,
        *f"models promote {unique_name} --metric auc --challenger-value 0.901 --champion-value 0.9".split(),
        *("--margin", "0.01", "--strict", *uri),
    )
    assert refused.exit_code == 1 and "v2 not promoted" in refused.output

    promoted = invoke(
        cli,
        *f"models promote {unique_name} --metric auc --challenger-value 0.93 --champion-value 0.9".split(),
        *("--margin", "0.01", "--by", "ci", *uri),
    )
    assert promoted.exit_code == 0 and "v2 promoted to champion" in promoted.output

    listing = invoke(cli, "models", "list", unique_name, *uri)
    assert listing.exit_code == 0
    lines = listing.output.splitlines()
    assert lines[0] == unique_name
    assert "v2" in lines[2] and "champion" in lines[2] and "promoted" in lines[2]

    back = invoke(cli, "models", "rollback", unique_name, "--reason", "bad canary", *uri)
    assert back.exit_code == 0 and "from v2 to v1" in back.output
    assert registry.version_for(unique_name, CHAMPION).version == "1"


def test_models_promote_on_a_holdout_file(cli, mlflow_url, unique_name, tmp_path, logged_pipelines, holdout):
    registry = ModelRegistry(tracking_uri=mlflow_url)
    for family in ("xgboost", "lightgbm"):
        register(registry, unique_name, logged_pipelines, family)
    path = tmp_path / "holdout.parquet"
    holdout.to_parquet(path)

    args = f"models promote {unique_name} --holdout {path} --target y --metric logloss --margin 10"
    result = invoke(cli, *args.split(), "--tracking-uri", mlflow_url)

    assert result.exit_code == 0, result.output
    assert "v2 not promoted: logloss" in result.output and "margin 10" in result.output


def test_track_sync_uploads_a_run_kept_offline(cli, mlflow_url, unique_name, tmp_path):
    down = MLflowTracker(
        TrackingConfig(tracking_uri=f"http://127.0.0.1:{free_port()}", experiment_name=unique_name),
        run_dir=tmp_path,
    )
    with pytest.warns(TrackingOfflineWarning):
        run = down.start_run("offline")
        down.log_metric_history("loss", [0.5, 0.4, 0.3])
        down.end_run()

    result = invoke(
        cli, "track", "sync", str(tmp_path), "--tracking-uri", mlflow_url, "--experiment", unique_name
    )

    assert result.exit_code == 0, result.output
    assert "synced 1 run(s)" in result.output and run in result.output
    remote = result.output.split(f"{run} -> ")[1].split()[0]
    online = MLflowTracker(TrackingConfig(tracking_uri=mlflow_url))
    assert [m.value for m in online.client.get_metric_history(remote, "loss")] == [0.5, 0.4, 0.3]


def test_sync_against_a_server_that_is_down_fails_clearly(cli, tmp_path):
    result = invoke(cli, "track", "sync", str(tmp_path), "--tracking-uri", f"http://127.0.0.1:{free_port()}")
    assert result.exit_code == 2
    assert "does not answer" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("--holdout h.parquet", "--holdout needs --target"),
        ("--challenger-value 0.9 --champion-value 0.8 --mode up", "--mode must be max or min, not 'up'"),
    ],
)
def test_models_promote_names_the_missing_or_bad_option_before_reaching_the_registry(cli, args, message):
    # No server is given or needed: the command line is checked first.
    result = invoke(cli, "models", "promote", "m", *args.split(), "--tracking-uri", "http://127.0.0.1:1")
    assert result.exit_code == 2 and f"error: {message}" in result.output
