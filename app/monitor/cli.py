"""``automl retrain``: what the monitor's retraining job runs (and a person can run by hand)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from app._cli import fail


def retrain(
    data: str = typer.Argument(
        ..., help="Fresh labelled data: Parquet/CSV path, directory, glob or s3:// URI."
    ),
    target: str = typer.Option(..., "--target", help="Column to predict."),
    model_name: str = typer.Option(..., "--model-name", help="Registered model the service follows."),
    time_budget_s: float | None = typer.Option(None, "--time-budget", min=1, help="Seconds for the fit."),
    margin: float = typer.Option(0.0, "--margin", min=0, help="Gain over the champion required to promote."),
    holdout: str | None = typer.Option(
        None, "--holdout", help="Rows both models are scored on (default: the data's test split)."
    ),
    reason: str = typer.Option("requested", "--reason", help="Why it runs (tagged in MLflow)."),
    out: Path = typer.Option(Path("runs/retrain"), "--out", help="Run directory of the challenger's fit."),
    config: Path | None = typer.Option(
        None, "--config", help="AppConfig YAML (search, data, tracking); MLFLOW_TRACKING_URI overrides."
    ),
) -> Any:
    """Fit a challenger on fresh data and promote it if it beats the champion on the same held-out rows."""
    from pydantic import ValidationError

    from app.config import AppConfig, ConfigError
    from app.data.errors import DataError
    from app.monitor.challenger import retrain as run_retrain

    try:
        cfg = AppConfig.load(config)
        outcome = run_retrain(
            data,
            target=target,
            model_name=model_name,
            config=cfg,
            out_dir=out,
            reason=reason,
            margin=margin,
            holdout=holdout,
            time_budget_s=time_budget_s,
        )
    except (ConfigError, ValidationError, DataError, ValueError, FileNotFoundError, RuntimeError) as exc:
        fail(exc)
    verb = "promoted to champion" if outcome.promoted else "not promoted"
    typer.echo(f"{outcome.model_name} v{outcome.version} {verb}: {outcome.decision}")
    return outcome  # jobs/retrain.py summarises it
