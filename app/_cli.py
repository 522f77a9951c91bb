"""What every ``automl`` command does with an error it expects: one line on stderr, exit code 2."""

from __future__ import annotations

from typing import NoReturn

import typer

USAGE_ERROR = 2
INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C


def one_line(message: object) -> str:
    """``message`` with its lines joined by ``; `` (a pydantic or config error lists one per line)."""
    lines = [" ".join(line.split()) for line in str(message).splitlines()]
    return "; ".join(line for line in lines if line)


def fail(message: object, *, code: int = USAGE_ERROR) -> NoReturn:
    typer.secho(f"error: {one_line(message)}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code=code)
