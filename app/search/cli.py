"""``automl fit`` and ``automl predict``: parse arguments, call the engine, print the leaderboard."""

from __future__ import annotations

from pathlib import Path

import typer

from app._cli import INTERRUPTED, fail


def fit(
    data: str | None = typer.Argument(None, help="Parquet/CSV path, directory, glob or s3:// URI."),
    target: str | None = typer.Option(None, "--target", help="Column to predict."),
    task: str = typer.Option("auto", "--task", help="auto | binary | multiclass | regression."),
    metric: str | None = typer.Option(None, "--metric", help="Validation metric (logloss, auc, rmse, ...)."),
    time_budget: float | None = typer.Option(None, "--time-budget", min=1, help="Seconds for the whole fit."),
    families: list[str] = typer.Option([], "--families", help="Model families (repeatable); default all."),
    num_samples: int = typer.Option(30, "--num-samples", min=1, help="Trials to run."),
    max_concurrent: int | None = typer.Option(None, "--max-concurrent", min=1, help="Trials at once."),
    scheduler: str = typer.Option("asha", "--scheduler", help="asha | fifo."),
    search_algorithm: str = typer.Option("optuna", "--search", help="optuna | random."),
    max_rounds: int = typer.Option(300, "--max-rounds", min=10, help="Boosting rounds per trial."),
    out: Path = typer.Option(Path("runs/automl"), "--out", help="Run directory."),
    ray_address: str | None = typer.Option(None, "--ray-address", help="Ray cluster address."),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted fit in --out."),
    refit: bool = typer.Option(
        True, "--refit/--no-refit", help="Train the chosen model again on train + valid (best round count)."
    ),
    cv_folds: int | None = typer.Option(
        None,
        "--cv-folds",
        min=0,
        help="Cross-validate the best trials and choose on it: 0 off, 2+ folds; default 5 up to 10,000 rows.",
    ),
) -> None:
    """Search model families and hyperparameters; write the leaderboard and the best model."""
    from pydantic import ValidationError

    from app.data.errors import DataError
    from app.search import AutoMLEngine, RayTuneOptimizer, RayTuneSettings
    from app.search import leaderboard as lb
    from app.search.interrupt import FitInterrupted

    try:
        if task not in ("auto", "binary", "multiclass", "regression"):
            raise ValueError(f"--task must be auto, binary, multiclass or regression, not {task!r}")
        settings = RayTuneSettings(
            ray_address=ray_address,
            num_samples=num_samples,
            max_concurrent_trials=max_concurrent,
            scheduler=scheduler,
            search_algorithm=search_algorithm,
            time_budget_s=time_budget,
            metric=metric,
            max_rounds=max_rounds,
            refit=refit,
            cv_folds=cv_folds,
            **({"families": families} if families else {}),
        )
        engine = AutoMLEngine(RayTuneOptimizer(settings), out_dir=out, notify=_note)
        if resume:
            result = engine.resume()
        else:
            if data is None or target is None:
                raise ValueError("DATA and --target are required (or --resume with --out of an earlier fit)")
            result = engine.fit(data, target=target, task=None if task == "auto" else task)
    except FitInterrupted as exc:
        fail(f"interrupted: {exc}", code=INTERRUPTED)
    except KeyboardInterrupt:
        fail(
            f"interrupted again: stopped at once, files already saved are kept; "
            f"resume the search with: automl fit --resume --out {out}",
            code=INTERRUPTED,
        )
    except (ValidationError, DataError, ValueError, FileNotFoundError, RuntimeError) as exc:
        fail(exc)
    typer.echo(lb.table(result.leaderboard))
    scored_on = f"{result.cv['folds']}-fold cv" if result.cv.get("done") else "valid"
    typer.echo(
        f"\nchosen: {result.chosen}  {scored_on} {result.metric}: "
        f"{result.ensemble_score if result.chosen == 'ensemble' else result.best_score:.5f}"
    )
    refit_note = (
        "refit on train + valid" if result.refit.get("done") else f"not refit ({result.refit.get('reason')})"
    )
    typer.echo(f"leaderboard: {out / 'leaderboard.csv'}\nmodel: {result.model_dir} ({refit_note})")
    typer.echo(f"wall time: {result.wall_time_s:.1f} s")


def _note(message: str) -> None:
    typer.secho(f"note: {message}", err=True, fg=typer.colors.YELLOW)


def predict(
    model_dir: Path = typer.Argument(..., help="A model directory written by fit or train."),
    data: str = typer.Argument(..., help="Rows to predict: Parquet/CSV file, directory or glob."),
    out: Path = typer.Option(..., "--out", help="Output Parquet file."),
) -> None:
    """Write ``prediction`` (and ``proba_<class>``) for every row, in input order."""
    from app.data.errors import DataError
    from app.train.predict import predict_to_parquet

    try:
        rows = predict_to_parquet(model_dir, data, out)
    except (DataError, ValueError, FileNotFoundError) as exc:
        fail(exc)
    typer.echo(f"{rows:,} predictions -> {out}")
