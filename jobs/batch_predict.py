"""Ray job entrypoint for batch scoring: ``automl predict`` under ``ray job submit``, same arguments and
config file; prints a JSON summary as its last line.

ray job submit --runtime-env jobs/runtime_env.yaml --working-dir . -- \
    uv run --frozen --extra all python jobs/batch_predict.py MODEL s3://b/new/ --out s3://b/p.parquet
"""

from __future__ import annotations

from typing import Any

from _entry import run_stage


def summarise(rows: int, params: dict[str, Any]) -> dict[str, Any]:
    return {"model": params["model"], "data": params["data"], "out": params["out"], "rows": rows}


if __name__ == "__main__":
    run_stage("batch_predict", ["predict"], summarise)
