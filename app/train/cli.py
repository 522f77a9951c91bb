"""``automl train``: parse arguments, call ``app.train.run_training``, print where the model went."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from app import _console as console
from app._cli import fail


def parse_params(pairs: list[str]) -> dict[str, float | int | str | bool]:
    """``["max_depth=6", "eta=0.1"]`` -> ``{"max_depth": 6, "eta": 0.1}`` (bools, ints, floats, strings)."""
    params: dict[str, float | int | str | bool] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--params: expected key=value, got {pair!r}")
        value: float | int | str | bool = raw
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        else:
            for cast in (int, float):
                try:
                    value = cast(raw)
                    break
                except ValueError:
                    continue
        params[key] = value
    return params


def train(
    data: str = typer.Argument(..., help="Parquet/CSV path, directory, glob or s3:// URI."),
    target: str = typer.Option(..., "--target", help="Column to predict."),
    family: str | None = typer.Option(
        None, "--family", help="xgboost | lightgbm | catboost (default: the config's train.family, xgboost)."
    ),
    num_workers: int | None = typer.Option(
        None, "--num-workers", min=1, help="Data-parallel Ray Train workers (default: train.num_workers, 1)."
    ),
    gpu: bool | None = typer.Option(
        None, "--gpu/--no-gpu", help="One GPU per worker (default: train.use_gpu)."
    ),
    params: list[str] = typer.Option(
        [], "--params", help="Library hyperparameters as key=value (repeatable)."
    ),
    rounds: int | None = typer.Option(None, "--rounds", min=1, help="Boosting rounds."),
    out: Path = typer.Option(Path("runs/train"), "--out", help="Directory for the model."),
    config: Path | None = typer.Option(None, "--config", help="AppConfig YAML."),
) -> Any:
    """Train one model family on Ray Train and save it in its native format."""
    from pydantic import ValidationError

    from app.config import AppConfig, ConfigError, describe
    from app.data.errors import DataError
    from app.train.api import run_training

    console.start(out / console.LOG_NAME)
    try:
        cfg = AppConfig.load(config)
        # An option given on the command line overrides the config file; one left out keeps the file's.
        given = {"family": family, "num_workers": num_workers, "use_gpu": gpu, "num_boost_round": rounds}
        overrides = {k: v for k, v in given.items() if v is not None}
        merged = {**cfg.train.params, **parse_params(params)}
        try:
            cfg.train = cfg.train.model_validate({**cfg.train.model_dump(), **overrides, "params": merged})
        except ValidationError as exc:
            raise ConfigError(
                describe(exc, "train settings (options over the config's train section)")
            ) from None
        result = run_training(data, target=target, config=cfg, out_dir=out, progress=console.Stages())
    except (ConfigError, DataError, ValueError, RuntimeError) as exc:
        fail(exc)
    typer.echo(f"model: {result.model_dir}")
    typer.echo(
        f"best iteration: {result.best_iteration}  valid {result.metric_name}: {result.best_score:.5f}"
    )
    typer.echo(f"wall time: {result.wall_time_s:.1f} s")
    return result  # jobs/train.py summarises it; the command line ignores it
