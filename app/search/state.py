"""The run directory's record of a fit: ``fit.json`` (what to resume with, then what was chosen) and the
layout of the model directories."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app import atomic
from app.search import interrupt

if TYPE_CHECKING:
    from collections.abc import Callable

    from app.data import DatasetSpec, PreparedData
    from app.search.inprocess import ValidRows
    from app.search.records import FitResult
    from app.search.settings import RayTuneSettings

FIT_FILE = "fit.json"
MODEL_DIR = "model"
VALIDATED_DIR = "validated_model"


def note_data(
    out_dir: Path,
    spec: DatasetSpec,
    settings: RayTuneSettings,
    task: str | None,
    prepared: PreparedData,
    *,
    notify: Callable[[str], None],
) -> None:
    """Write ``fit.json`` with what was noticed about the data, and tell the user (``notify``)."""
    dropped = prepared.null_target_rows()
    text_numbers = prepared.info.text_numbers
    data = {"null_target_rows": dropped, "text_numbers": text_numbers}
    write_fit_file(out_dir, spec, settings, task, data=data)
    for name, markers in text_numbers.items():
        notify(
            f"column {name!r} is text but holds numbers{' and ' + str(markers) if markers else ''}: "
            "read as numbers, markers as missing values"
        )
    if dropped["rows"]:
        notify(
            f"{dropped['rows']:,} of {dropped['of']:,} rows ({dropped['counted_in']}) have no "
            f"{spec.target!r} value and are not used; recorded in {out_dir / FIT_FILE} "
            "under data.null_target_rows"
        )


def write_fit_file(
    out_dir: Path, spec: DatasetSpec, settings: RayTuneSettings, task: str | None, *, data: dict[str, Any]
) -> None:
    """What ``resume`` needs (the data spec, the settings, the task) and what was noticed about the data;
    written atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    saved = {"spec": spec.model_dump(), "settings": settings.model_dump(), "task": task, "data": data}
    atomic.write_json(out_dir / FIT_FILE, saved)


def record_result(out_dir: Path, result: FitResult) -> None:
    """Add what the fit chose, where trials trained and whether it refit to ``fit.json``."""
    path = out_dir / FIT_FILE
    saved = json.loads(path.read_text())
    saved["result"] = {
        "chosen": result.chosen,
        "metric": result.metric,
        "best_score": result.best_score,
        "ensemble_score": result.ensemble_score,
        "trainer": result.trainer,
        "refit": result.refit,
        "cv": result.cv,
        "bagging": result.bagging,
        "validated_model_dir": str(result.validated_model_dir or result.model_dir),
        "interrupted": interrupt.requested(),
        "search": result.search,
        # The MLflow run, and what the clock cut from tracking (trial child runs, the run report) and why.
        "tracking": dict(result.tracking) or None,
        "wall_time_s": round(result.wall_time_s, 3) if result.wall_time_s else None,
    }
    atomic.write_json(path, saved)


def save_prediction_reference(result: FitResult, valid: ValidRows) -> None:
    """Prediction drift's reference, beside the model: the model as validated (a refit model has trained
    on the validation rows, so its predictions there would look better than any served traffic's)."""
    from app.train.load import load_model
    from app.train.reference import reference, save_reference

    if valid.raw is None or valid.raw.num_rows == 0:
        return
    model = load_model(result.validated_model_dir) if result.validated_model_dir else result.model
    save_reference(reference(model, valid.raw), result.out_dir)
