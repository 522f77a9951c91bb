"""What a person sees in the terminal: one line per stage, the libraries' own output in the run's log file.

Every ``automl`` command calls ``start(log_file)`` first. Unless ``automl --verbose`` was given, Ray's,
Ray Data's, MLflow's, Optuna's and Python's warnings go to ``log_file`` only, through each library's own
logger; stage lines (``Stages``) go to stderr and results to stdout. An unexpected error is one line,
its trace in the log file (``main``).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import typer

LOG_NAME = "automl.log"
VERBOSE_ENV = "AUTOML_VERBOSE"
# Loggers that libraries give handlers of their own (printing to the terminal) when they are imported.
_LIBRARY_LOGGERS = ("ray", "ray.data", "ray.tune", "ray.train", "ray.serve", "optuna", "mlflow")
_state: dict[str, object] = {"handler": None, "log_file": None, "verbose": False}


def set_verbose(on: bool) -> None:
    """``automl --verbose``: set for each invocation (several run in one process under tests)."""
    _state["verbose"] = on


def verbose() -> bool:
    """``automl --verbose`` (or ``AUTOML_VERBOSE=1``): the libraries print as they do by default."""
    return bool(_state["verbose"]) or os.environ.get(VERBOSE_ENV, "") not in ("", "0", "false")


def log_file() -> Path | None:
    """The log file of the running command, once ``start`` named it."""
    return _state["log_file"]  # type: ignore[return-value]


def scratch_dir() -> Path:
    """Where a command without a run directory of its own keeps its log (``serve``, ``models``)."""
    return Path(tempfile.gettempdir()) / "automl"


def start(path: Path, *, uses_ray: bool = True) -> Path:
    """Route library logging and Python warnings to ``path``; unless ``verbose()``, nothing of theirs reaches
    the terminal. ``uses_ray``: Ray installs its terminal handler when imported, so it is imported here
    and its handlers replaced (commands that only talk to MLflow skip the import)."""
    root = logging.getLogger()
    old = _state["handler"]
    if isinstance(old, logging.Handler):  # a second command in one process (tests): one file at a time
        root.removeHandler(old)
        old.close()
    handler = _LogFile(path, encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)  # Ray Data's logger passes on its DEBUG records too
    root.addHandler(handler)
    root.setLevel(min(root.level or logging.INFO, logging.INFO))
    _state.update(handler=handler, log_file=path)
    logging.captureWarnings(True)  # warnings.warn -> the "py.warnings" logger -> the file
    _app_warnings_to_terminal()
    quiet = not verbose()
    if quiet:
        # Read when the libraries are imported: MLflow then adds no handler of its own nor download bars.
        os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        # Tune's newer console output prints its configuration table even at verbose=0; the older, nothing.
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    if uses_ray:
        # Importing Ray Data configures the "ray" and "ray.data" loggers, each with a terminal handler.
        from ray.data import DataContext

        if quiet:
            DataContext.get_current().enable_progress_bars = False
    for name in _LIBRARY_LOGGERS:
        _to_file(logging.getLogger(name), terminal=not quiet)
    if "optuna" in sys.modules or uses_ray:
        _optuna_to_file(terminal=not quiet)
    return path


def _to_file(logger: logging.Logger, *, terminal: bool) -> None:
    """Let the logger's records reach the root logger, whose handler is the log file; unless ``terminal``,
    drop its terminal handlers (file handlers, e.g. Ray Data's session log, stay)."""
    if not terminal:
        for h in list(logger.handlers):
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
                logger.removeHandler(h)
    logger.propagate = True


def _optuna_to_file(*, terminal: bool) -> None:
    """Optuna logs "A new study created" through a stderr handler of its own; its switches send it on."""
    import optuna

    if not terminal:
        optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()


class _LogFile(logging.FileHandler):
    """Opened, with its folder, at the first record: a command that fails on its input leaves no file."""

    def _open(self):
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()


def _app_warnings_to_terminal() -> None:
    """This project's own warnings stay in the terminal, one line each (they are for the user)."""
    app_logger = logging.getLogger("app")
    if not any(getattr(h, "_automl", False) for h in app_logger.handlers):
        handler = _EchoHandler()
        handler.setLevel(logging.WARNING)
        app_logger.addHandler(handler)


class _EchoHandler(logging.Handler):
    _automl = True

    def emit(self, record: logging.LogRecord) -> None:
        typer.secho(f"warning: {record.getMessage()}", err=True, fg=typer.colors.YELLOW)


class Stages:
    """One line per stage on stderr: ``stage  what it did  seconds``. On a terminal, ``update`` redraws the
    running stage's line in place (a progress line); elsewhere only the finished line is written."""

    def __init__(self, *, tty: bool | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.clock = clock
        self.started = clock()
        self._open = False

    def update(self, stage: str, text: str) -> None:
        if self.tty:
            typer.echo(f"\r\033[K{stage:<8} {text}", err=True, nl=False, color=True)
            self._open = True

    def done(self, stage: str, text: str) -> None:
        """The stage's last line, with the seconds since the previous stage ended."""
        now = self.clock()
        line = f"{stage:<8} {text}  ({now - self.started:.1f} s)"
        self.started = now
        typer.echo(f"\r\033[K{line}" if self._open else line, err=True, color=True)
        self._open = False

    def __call__(self, stage: str, text: str, *, final: bool = True) -> None:
        """The ``progress`` callback the library takes: ``final=False`` is a progress update."""
        (self.done if final else self.update)(stage, text)


def main(app: typer.Typer) -> None:
    """Run the Typer ``app``; an unexpected exception is one line, its trace in the command's log file.

    Click still handles usage errors and ``typer.Exit`` (``SystemExit`` passes through)."""
    try:
        app()
    except Exception as exc:  # noqa: BLE001 - the last stop: one line instead of a trace
        path = log_file() or Path.cwd() / LOG_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write("".join(traceback.format_exception(exc)))
        message = " ".join(str(exc).split()) or type(exc).__name__
        typer.secho(
            f"error: {type(exc).__name__}: {message} (trace in {path})", err=True, fg=typer.colors.RED
        )
        sys.exit(1)
