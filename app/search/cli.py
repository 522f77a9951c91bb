"""``automl fit`` and ``automl predict``: parse arguments, call the engine, print the leaderboard."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import typer

from app import _console as console
from app._cli import INTERRUPTED, end_now, fail, process_started


def fit(
    data: str | None = typer.Argument(None, help="Parquet/CSV path, directory, glob or s3:// URI."),
    target: str | None = typer.Option(None, "--target", help="Column to predict."),
    task: str = typer.Option("auto", "--task", help="auto | binary | multiclass | regression."),
    metric: str | None = typer.Option(None, "--metric", help="Validation metric (logloss, auc, rmse, ...)."),
    time_budget_s: float | None = typer.Option(
        None, "--time-budget", min=1, help="Seconds for the whole fit."
    ),
    families: list[str] = typer.Option([], "--families", help="Model families (repeatable); default all."),
    num_samples: int | None = typer.Option(
        None,
        "--num-samples",
        min=1,
        help="Trials to run; default: as many as --time-budget allows, 30 without one.",
    ),
    max_concurrent_trials: int | None = typer.Option(None, "--max-concurrent", min=1, help="Trials at once."),
    scheduler: str | None = typer.Option(None, "--scheduler", help="asha (default) | fifo."),
    search_algorithm: str | None = typer.Option(None, "--search", help="optuna (default) | random."),
    max_rounds: int | None = typer.Option(
        None,
        "--max-rounds",
        min=10,
        help="Boosting rounds a trial may use; default sized from the rows (1,000 up to 10,000 rows, "
        "4,000 from 10M); early stopping and the time budget end trials sooner.",
    ),
    out: Path = typer.Option(Path("runs/automl"), "--out", help="Run directory."),
    ray_address: str | None = typer.Option(None, "--ray-address", help="Ray cluster address."),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted fit in --out."),
    refit: bool | None = typer.Option(
        None,
        "--refit/--no-refit",
        help="Train the chosen model again on train + valid (best round count); default on.",
    ),
    cv_folds: int | None = typer.Option(
        None,
        "--cv-folds",
        min=0,
        help="Cross-validate the best trials and choose on it: 0 off, 2+ folds; default 5 up to 10,000 rows.",
    ),
    config: Path | None = typer.Option(
        None, "--config", help="AppConfig YAML; options given here override its search section."
    ),
) -> Any:
    """Search model families and hyperparameters; write the leaderboard and the best model.

    Long because of the option declarations: the body parses, calls ``run_fit`` and prints."""
    from pydantic import ValidationError

    from app.config import AppConfig, ConfigError
    from app.data.errors import DataError
    from app.search import leaderboard as lb
    from app.search.api import run_fit
    from app.search.interrupt import FitInterrupted

    console.start(out / console.LOG_NAME)
    try:
        if task not in ("auto", "binary", "multiclass", "regression"):
            raise ValueError(f"--task must be auto, binary, multiclass or regression, not {task!r}")
        cfg = AppConfig.load(config)
        result = run_fit(
            data,
            target=target,
            config=cfg,
            out_dir=out,
            task=None if task == "auto" else task,
            resume=resume,
            metric=metric,
            time_budget_s=time_budget_s,
            families=families,
            num_samples=num_samples,
            max_concurrent_trials=max_concurrent_trials,
            scheduler=scheduler,
            search_algorithm=search_algorithm,
            max_rounds=max_rounds,
            ray_address=ray_address,
            refit=refit,
            cv_folds=cv_folds,
            notify=_note,
            progress=console.Stages(),
            started=process_started(),
        )
    except FitInterrupted as exc:
        fail(f"interrupted: {exc}", code=INTERRUPTED)
    except KeyboardInterrupt:
        fail(
            f"interrupted again: stopped at once, files already saved are kept; "
            f"resume the search with: automl fit --resume --out {out}",
            code=INTERRUPTED,
        )
    except (ConfigError, ValidationError, DataError, ValueError, FileNotFoundError, RuntimeError) as exc:
        fail(exc)
    typer.echo(lb.table(result.leaderboard))
    if result.search:
        typer.echo(f"\n{lb.search_summary(result.search)}")
    scored_on = f"{result.cv.get('folds')}-fold cv" if result.cv["done"] else "valid"
    typer.echo(
        f"\nchosen: {result.chosen}  {scored_on} {result.metric}: "
        f"{result.ensemble_score if result.chosen == 'ensemble' else result.best_score:.5f}"
    )
    if result.search and (line := lb.warning(result.search, mode=result.mode)):
        typer.secho(line, err=True, fg=typer.colors.YELLOW)
    refit_note = "refit on train + valid" if result.refit["done"] else f"not refit ({result.refit['reason']})"
    grown = [g for g in result.refit.get("all_rows", []) if g["replaced"]]
    if grown:
        each = ", ".join(f"{g['trial_id']} from {g['sample_rows']:,}" for g in grown)
        refit_note = f"grown to all {grown[0]['rows']:,} rows: {each}; {refit_note}"
    if result.bagging["done"]:
        members = len(result.bagging["members"])
        refit_note = f"bagged: {result.bagging['folds']} fold models of each of {members} member(s)"
    typer.echo(f"leaderboard: {out / 'leaderboard.csv'}\nmodel: {result.model_dir} ({refit_note})")
    if result.tracking.get("registered"):
        name = cfg.tracking.registered_model_name
        typer.echo(f"registered: {name} version {result.tracking['registered']}")
    if result.tracking.get("report"):
        typer.echo(f"run report: {result.tracking['report']}")
    budget_s = time_budget_s or cfg.search.time_budget_s
    of_budget = f" of a {budget_s:g} s budget" if budget_s else ""
    typer.echo(f"wall time: {result.wall_time_s:.1f} s{of_budget}")
    logging.getLogger("app.cli").info("fit done: %s in %.1f s", result.chosen, result.wall_time_s)
    end_now()
    return result  # jobs/automl.py summarises it; the command line ignores it


def _note(message: str) -> None:
    typer.secho(f"note: {message}", err=True, fg=typer.colors.YELLOW)


def predict(
    model: str = typer.Argument(
        ..., help="A model directory written by fit or train, or a registered model (models:/NAME@ALIAS)."
    ),
    data: str = typer.Argument(..., help="Rows to predict: Parquet/CSV file, directory, glob or s3:// URI."),
    out: Path = typer.Option(..., "--out", help="Output Parquet file."),
    config: Path | None = typer.Option(
        None, "--config", help="AppConfig YAML (MLflow for models:/ URIs, S3 endpoint)."
    ),
) -> int:
    """Write ``prediction`` (and ``proba_<class>``) for every row, in input order."""
    from mlflow.exceptions import MlflowException

    from app.config import AppConfig, ConfigError
    from app.data.errors import DataError
    from app.train.predict import predict_to_parquet

    console.start(out.parent / console.LOG_NAME)
    try:
        cfg = AppConfig.load(config)
        rows = predict_to_parquet(model, data, out, tracking_uri=cfg.tracking.tracking_uri, s3=cfg.data.s3)
    # LookupError: models:/NAME@ALIAS whose alias nobody set.
    except (ConfigError, DataError, ValueError, FileNotFoundError, LookupError) as exc:
        fail(exc)
    except MlflowException as exc:  # models:/NAME/VERSION with no such name or version on the registry
        fail(f"{model}: {exc.message}")
    typer.echo(f"{rows:,} predictions -> {out}")
    return rows
