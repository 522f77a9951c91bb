"""The ``automl`` command line: thin commands that parse arguments and call the library."""

from __future__ import annotations

import glob as _glob
import os
import sys
from pathlib import Path

import typer

from app import _console as console
from app._cli import fail
from app.monitor.cli import retrain as retrain_command
from app.search.cli import fit as fit_command
from app.search.cli import predict as predict_command
from app.serve.cli import serve as serve_command
from app.tracking.cli import models_app, report_command, track_app
from app.train.cli import train as train_command

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Ray-native AutoML for tabular data.")
prep_app = typer.Typer(no_args_is_help=True, help="Out-of-core data preparation.")
app.add_typer(prep_app, name="prep")
app.command("train")(train_command)
app.command("fit")(fit_command)
app.command("predict")(predict_command)
app.add_typer(models_app, name="models")
app.add_typer(track_app, name="track")
app.command("report")(report_command)
app.command("serve")(serve_command)
app.command("retrain")(retrain_command)


def _fail(message: str) -> None:
    fail(message)


@app.callback()
def _options(
    verbose: bool = typer.Option(
        False,
        "--verbose",
        help="Also show the libraries' own output (Ray, Tune, MLflow) in the terminal; it always goes to "
        "the run's automl.log.",
    ),
) -> None:
    """Ray-native AutoML for tabular data. Each command shows a line per stage; the libraries' output
    goes to automl.log in its run directory."""
    console.set_verbose(verbose)


@prep_app.command("csv-to-parquet")
def csv_to_parquet_cmd(
    input: str = typer.Argument(..., help="CSV file, glob or s3:// URI; several files run as a Ray job."),
    outdir: str = typer.Argument(..., help="Output directory (local or s3://)."),
    chunk_rows: int = typer.Option(1_000_000, "--chunk-rows", min=1, help="Rows per Parquet file."),
    partition_by: str | None = typer.Option(None, "--partition-by", help="Hive-partition by this column."),
    transform: str | None = typer.Option(None, "--transform", help="module:function applied to each chunk."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Skip chunks finished by an earlier run."),
    na_values: list[str] = typer.Option(
        [],
        "--na-values",
        help="A marker of a missing value in numeric columns, beside ? - NA N/A null None (repeatable).",
    ),
    encoding_errors: str = typer.Option(
        "strict", "--encoding-errors", help="strict: invalid UTF-8 is an error; replace: replace and count."
    ),
) -> list:
    """Stream a CSV of any size into Parquet files at constant memory."""
    from app.cluster import ClusterUnreachableError
    from app.data import prep
    from app.data.errors import DataError

    console.start((Path(outdir) if "://" not in outdir else console.scratch_dir()) / console.LOG_NAME)
    if transform and "" not in sys.path and os.getcwd() not in sys.path:
        # `python -m app.cli` imports from the working directory; the console script should too.
        sys.path.insert(0, os.getcwd())
    try:
        inputs = sorted(_glob.glob(input)) if any(c in input for c in "*?[") else [input]
        if not inputs:
            _fail(f"no file matches {input!r}")
        if encoding_errors not in ("strict", "replace"):
            _fail(f"--encoding-errors must be strict or replace, not {encoding_errors!r}")
        kwargs = dict(chunk_rows=chunk_rows, partition_by=partition_by, transform=transform, resume=resume)
        kwargs.update(na_values=na_values or None, encoding_errors=encoding_errors)
        if len(inputs) == 1:
            results = [prep.csv_to_parquet(inputs[0], outdir, progress=True, **kwargs)]
        else:
            results = prep.csv_to_parquet_many(inputs, outdir, **kwargs)
    except (DataError, OSError, ClusterUnreachableError) as exc:  # a path or a Ray address the user gave
        _fail(str(exc))
    for r in results:
        typer.echo(f"{r.input_path}: {r.rows:,} rows in {r.chunks} chunk(s) -> {r.out_dir}")
        for note in r.notes():
            typer.secho(f"note: {r.input_path}: {note}", err=True, fg=typer.colors.YELLOW)
    return results  # jobs/prep.py summarises them


@app.command()
def quickstart(
    out: Path = typer.Option(Path("runs/quickstart"), "--out", help="Run directory."),
    rows: int = typer.Option(20_000, "--rows", min=100, help="Rows of generated data."),
    time_budget: float = typer.Option(90.0, "--time-budget", min=10, help="Seconds for the search stage."),
    config: Path | None = typer.Option(None, "--config", help="AppConfig YAML."),
) -> None:
    """Run the main job end to end on generated data and local defaults."""
    from app.config import AppConfig, ConfigError
    from app.quickstart import run_quickstart

    try:
        cfg = AppConfig.load(config)
    except ConfigError as exc:
        _fail(str(exc))
    console.start(out / console.LOG_NAME)
    result = run_quickstart(out, rows=rows, config=cfg, time_budget_s=time_budget, progress=console.Stages())
    typer.echo(
        f"data: {result.data_dir} ({result.rows['train']:,} train / {result.rows['valid']:,} valid rows)"
    )
    typer.echo(f"task: {result.task}")
    for name, path in result.artifacts.items():
        typer.echo(f"{name}: {path}")
    if result.model_dir is not None:
        typer.echo(f"trained: {result.family}, valid {result.metric_name} {result.best_score:.5f}")
    if result.leaderboard:
        typer.echo(f"\nsearch leaderboard:\n{result.leaderboard}")
        typer.echo(f"search model: {result.search_model_dir}")
        typer.echo(f"predictions: {result.predictions}")
    if result.served is not None:
        s = result.served
        typer.echo(
            f"served: {s.requests} requests to {s.url}/predict (model version {s.version}), "
            f"{s.cache_hits} answered from the cache; API docs were at {s.docs_url}"
        )
    if result.tracking_uri:
        typer.echo(f"MLflow UI: uv run mlflow ui --backend-store-uri {result.tracking_uri}")
    typer.echo("seconds: " + ", ".join(f"{k}={v:.1f}" for k, v in result.seconds.items()))


def main() -> None:
    console.main(app)


if __name__ == "__main__":
    main()
