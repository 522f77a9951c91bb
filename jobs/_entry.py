"""What every ``jobs/*.py`` entry shares: the working dir's ``app`` on ``sys.path``, the ``automl`` command
line's own parser for the arguments, the Ray job's submission id and metadata, and one JSON summary line.

A job is the CLI command of its stage run under ``ray job submit``, so it takes the same arguments and config
file and has no options of its own. A new entry is a few lines (``jobs/train.py`` is the pattern)::

    from _entry import run_stage

    def summarise(result, params: dict) -> dict:   # the command's return value, its parsed parameters
        return {"model_dir": str(result.model_dir)}

    if __name__ == "__main__":
        run_stage("train", ["train"], summarise)   # stage name, command path under `automl`
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Ray's job supervisor hands the driver its JobConfig (metadata included) in this variable.
JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"
SUBMIT_HINT = (
    "submit it as `ray job submit --runtime-env jobs/runtime_env.yaml --working-dir . -- "
    "uv run --frozen --extra all python jobs/<stage>.py ...` (README: Jobs)"
)


def job_info(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """This Ray job's submission id and metadata (what ``ray job submit --submission-id --metadata-json``
    gave), or ``{}`` outside a submitted job."""
    raw = (environ if environ is not None else os.environ).get(JOB_CONFIG_ENV)
    if not raw:
        return {}
    metadata = dict(json.loads(raw).get("metadata") or {})
    submission_id = metadata.pop("job_submission_id", None)
    metadata.pop("job_name", None)  # Ray's copy of the submission id
    return {"submission_id": submission_id, "metadata": metadata}


def summary_record(
    stage: str, summary: dict[str, Any], *, environ: dict[str, str] | None = None
) -> dict[str, Any]:
    """The job's last line, as a dict: its stage, submission id and metadata, and the stage's own figures
    (JSON-ready: paths and other values become strings)."""
    return json.loads(json.dumps({"stage": stage, **job_info(environ), **summary}, default=str))


def require_project() -> None:
    """``app`` importable with its dependencies, or one line saying which Python lacks them and how to
    submit the job so that it has them (a cluster's first ``python`` on PATH is often a bare one)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # the job's working dir: `app` comes with the upload
    try:
        import pandas  # noqa: F401
        import ray  # noqa: F401

        import app.cli  # noqa: F401 - pulls in typer, pydantic and the stage commands
    except ImportError as exc:
        print(f"error: {sys.executable}: {exc}; {SUBMIT_HINT}", file=sys.stderr)
        raise SystemExit(2) from None


def invoke(path: Sequence[str], argv: Sequence[str]) -> tuple[Any, dict[str, Any]] | None:
    """Run ``automl PATH...`` with ``argv`` exactly as the command line does (its parser, its messages and
    exit codes: a usage error or ``fail()`` exits here); the command's return value and parsed parameters,
    or None after ``--help``."""
    import typer

    from app.cli import app

    command = typer.main.get_command(app)
    prog = "automl"
    for name in path:
        command = command.commands[name]
        prog = f"{prog} {name}"
    seen: dict[str, Any] = {}
    run = command.callback

    def keep(**params: Any) -> Any:
        seen["params"], seen["result"] = params, run(**params)
        return seen["result"]

    command.callback = keep
    try:
        command.main(args=list(argv), prog_name=prog, standalone_mode=True)
    except SystemExit as exc:  # standalone mode always ends with it; 0 on success and after --help
        if exc.code not in (0, None):
            raise
    return (seen["result"], seen["params"]) if seen else None


def run_stage(
    stage: str,
    path: Sequence[str],
    summarise: Callable[[Any, dict[str, Any]], dict[str, Any]],
    argv: Sequence[str] | None = None,
) -> dict[str, Any]:
    """One job: parse ``argv`` (default ``sys.argv[1:]``) as ``automl PATH...`` does, run the command, print
    ``summarise(result, params)`` with the stage and job metadata as the last line; that dict."""
    require_project()
    ran = invoke(path, sys.argv[1:] if argv is None else argv)
    if ran is None:  # --help
        return {}
    record = summary_record(stage, summarise(*ran))
    print(json.dumps(record), flush=True)
    return record
