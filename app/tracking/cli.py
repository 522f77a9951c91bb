"""``automl models list|promote|rollback``, ``automl track sync`` and ``automl report``: parse the
arguments, call ``app.tracking``, print the outcome. mlflow is imported inside the commands only."""

from __future__ import annotations

from pathlib import Path

import typer

models_app = typer.Typer(
    no_args_is_help=True, help="Registered models: versions, champion and challenger, promotion, rollback."
)
track_app = typer.Typer(no_args_is_help=True, help="MLflow tracking: upload runs kept offline.")

_URI = typer.Option(
    None, "--tracking-uri", help="MLflow tracking URI (default: config, then MLFLOW_TRACKING_URI)."
)
_CONFIG = typer.Option(None, "--config", help="AppConfig YAML.")
_RUN_DIR = typer.Option(Path("."), "--run-dir", help="Run directory of the embedded store (no tracking URI).")


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code=2)


def _tracking(
    config: Path | None, tracking_uri: str | None, experiment: str | None = None, *, run_dir: Path | None
):
    """The tracking settings; MLflow's own logging goes to RUN_DIR/automl.log from here on (the temp dir's
    automl/ for the ``models`` commands, whose run dir is only where an embedded store would be)."""
    from app import _console as console
    from app.config import AppConfig, ConfigError

    console.start((run_dir or console.scratch_dir()) / console.LOG_NAME, uses_ray=False)

    try:
        cfg = AppConfig.load(config)
    except ConfigError as exc:
        _fail(str(exc))
    tracking = cfg.tracking
    if tracking_uri:
        tracking.tracking_uri = tracking_uri
    if experiment:
        tracking.experiment_name = experiment
    return tracking


def _registry(tracking, run_dir: Path):
    """The registry on the tracker's client (its store: the server, or the run dir's embedded one)."""
    from app.tracking.registry import ModelRegistry
    from app.tracking.tracker import MLflowTracker

    return ModelRegistry(MLflowTracker(tracking, run_dir=run_dir).client)


def _errors() -> tuple[type[BaseException], ...]:
    from mlflow.exceptions import MlflowException

    from app.tracking.tracker import TrackingUnavailableError

    return (MlflowException, TrackingUnavailableError, ValueError, FileNotFoundError)


@models_app.command("list")
def list_models(
    name: str | None = typer.Argument(None, help="One registered model (default: all)."),
    tracking_uri: str | None = _URI,
    config: Path | None = _CONFIG,
    run_dir: Path = _RUN_DIR,
) -> None:
    """Registered models, their versions, aliases and last promotion decision."""
    registry = _registry(_tracking(config, tracking_uri, run_dir=None), run_dir)
    try:
        names = [name] if name else sorted(m.name for m in registry.models())
        for model_name in names:
            typer.echo(model_name)
            for v in registry.versions(model_name):
                aliases = ",".join(sorted(v.aliases)) or "-"
                decision = v.tags.get("decision", "")
                reason = v.tags.get("reason", "")
                typer.echo(
                    f"  v{v.version:<4} {aliases:<22} run={v.run_id or '-'}  {decision} {reason}".rstrip()
                )
    except _errors() as exc:
        _fail(str(exc))


@models_app.command("promote")
def promote(
    name: str = typer.Argument(..., help="Registered model."),
    version: str | None = typer.Option(
        None, "--version", help="Candidate version (default: the challenger)."
    ),
    metric: str = typer.Option("auc", "--metric", help="auc | logloss | accuracy | rmse | mae, or a label."),
    challenger_value: float | None = typer.Option(
        None, "--challenger-value", help="Candidate's holdout value."
    ),
    champion_value: float | None = typer.Option(None, "--champion-value", help="Champion's holdout value."),
    holdout: Path | None = typer.Option(
        None, "--holdout", help="Parquet/CSV holdout scored by both versions."
    ),
    target: str | None = typer.Option(None, "--target", help="Target column of --holdout."),
    margin: float | None = typer.Option(None, "--margin", min=0, help="Required gain (default: config)."),
    mode: str | None = typer.Option(None, "--mode", help="max | min (default: from the metric)."),
    by: str | None = typer.Option(None, "--by", help="Who promotes (default: the user name)."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 when the challenger is not promoted."),
    tracking_uri: str | None = _URI,
    config: Path | None = _CONFIG,
    run_dir: Path = _RUN_DIR,
) -> None:
    """Promote a version to champion if it beats the champion by the margin on the same holdout data."""
    from app.tracking.registry import ComparisonNeeded, ModelRegistry, holdout_metric
    from app.tracking.tracker import MLflowTracker

    if holdout is not None and not target:
        _fail("--holdout needs --target")
    if mode not in (None, "max", "min"):
        _fail(f"--mode must be max or min, not {mode!r}")
    tracking = _tracking(config, tracking_uri, run_dir=None)
    tracker = MLflowTracker(tracking, run_dir=run_dir)
    registry = ModelRegistry(tracker.client)
    fn = None
    if holdout is not None:
        fn = holdout_metric(
            _read_frame(holdout), target=target, metric=metric, tracking_uri=tracker.tracking_uri
        )
    try:
        decision = registry.promote(
            name,
            version=version,
            metric=metric,
            candidate_value=challenger_value,
            champion_value=champion_value,
            holdout_metric_fn=fn,
            margin=tracking.promotion_margin if margin is None else margin,
            mode=mode,
            by=by,
        )
    except ComparisonNeeded as exc:
        _fail(
            f"{exc.name}: v{exc.version} is compared with champion v{exc.champion}: give --holdout FILE "
            "--target COLUMN (both versions are scored on it), or --challenger-value and --champion-value"
        )
    except _errors() as exc:
        _fail(str(exc))
    verb = "promoted to champion" if decision.promoted else "not promoted"
    typer.echo(f"{name} v{decision.candidate_version} {verb}: {decision.reason}")
    if strict and not decision.promoted:
        raise typer.Exit(code=1)


@models_app.command("rollback")
def rollback(
    name: str = typer.Argument(..., help="Registered model."),
    by: str | None = typer.Option(None, "--by", help="Who rolls back (default: the user name)."),
    reason: str | None = typer.Option(None, "--reason", help="Why, recorded as a tag."),
    tracking_uri: str | None = _URI,
    config: Path | None = _CONFIG,
    run_dir: Path = _RUN_DIR,
) -> None:
    """Point the champion alias back at the previous champion."""
    registry = _registry(_tracking(config, tracking_uri, run_dir=None), run_dir)
    try:
        result = registry.rollback(name, by=by, reason=reason)
    except _errors() as exc:
        _fail(str(exc))
    typer.echo(f"{name}: champion rolled back from v{result.from_version} to v{result.to_version}")


@track_app.command("sync")
def sync(
    run_dir: Path = typer.Argument(..., help="Run directory holding mlruns-pending/."),
    tracking_uri: str | None = _URI,
    experiment: str | None = typer.Option(
        None, "--experiment", help="Experiment for new runs (default: the one each run was meant for)."
    ),
    config: Path | None = _CONFIG,
) -> None:
    """Upload the runs kept offline under RUN_DIR/mlruns-pending/ to the tracking server."""
    from app.tracking.pending import sync_pending
    from app.tracking.tracker import MLflowTracker

    tracker = MLflowTracker(_tracking(config, tracking_uri, run_dir=run_dir), run_dir=run_dir)
    try:
        report = sync_pending(run_dir, tracker, experiment_name=experiment)
    except _errors() as exc:
        _fail(str(exc))
    typer.echo(
        f"synced {len(report.runs)} run(s) to {tracker.display_uri}: {report.metrics} metric values, "
        f"{report.artifacts} artifact(s), {report.models} model(s)"
    )
    for local, remote in report.runs.items():
        typer.echo(f"  {local} -> {remote}")


def report_command(
    run_dir: Path = typer.Argument(..., help="Run directory with report/inputs/ from an earlier report."),
    model: str | None = typer.Option(
        None, "--model", help="Model directory or models:/ URI (default: the one recorded)."
    ),
    tracking_uri: str | None = _URI,
    config: Path | None = _CONFIG,
) -> None:
    """Regenerate the run report (PNGs and report.html) under RUN_DIR/report/."""
    from app.tracking.report import regenerate_report

    tracking = _tracking(config, tracking_uri, run_dir=run_dir)
    try:
        report = regenerate_report(run_dir, model_dir=model, tracking_uri=tracking.tracking_uri)
    except _errors() as exc:
        _fail(str(exc))
    typer.echo(f"report: {report.html}")
    for key, path in report.images.items():
        typer.echo(f"  {key}: {path}")


def _read_frame(path: Path):
    import pandas as pd

    if path.is_dir() or path.suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    return pd.read_csv(path)
