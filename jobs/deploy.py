"""Ray job entrypoint for deployment: ``automl serve --detach`` under ``ray job submit``: deploys
serve_config.yaml (``--config``) with the given model and returns, leaving the service running (``serve
shutdown`` stops it); prints a JSON summary as its last line.

ray job submit --runtime-env jobs/runtime_env.yaml --working-dir . -- \
    uv run --frozen --extra all python jobs/deploy.py MODEL --config serve_config.yaml
"""

from __future__ import annotations

import sys
from typing import Any

from _entry import run_stage


def summarise(url: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"model": params["model"], "config": params["config"], "url": url}


if __name__ == "__main__":
    argv = sys.argv[1:]
    run_stage("deploy", ["serve"], summarise, [*argv, *([] if "--detach" in argv else ["--detach"])])
