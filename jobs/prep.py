"""Ray job entrypoint for data preparation: ``automl prep csv-to-parquet`` under ``ray job submit``, same
arguments; prints a JSON summary as its last line.

ray job submit --runtime-env jobs/runtime_env.yaml --working-dir . -- \
    uv run --frozen --extra all python jobs/prep.py s3://b/raw/*.csv s3://b/data/
"""

from __future__ import annotations

from typing import Any

from _entry import run_stage


def summarise(results: list[Any], params: dict[str, Any]) -> dict[str, Any]:
    return {
        "out_dir": params["outdir"],
        "inputs": len(results),
        "rows": sum(r.rows for r in results),
        "files": sum(len(r.files) for r in results),
        "seconds": round(sum(r.seconds for r in results), 2),
    }


if __name__ == "__main__":
    run_stage("prep", ["prep", "csv-to-parquet"], summarise)
