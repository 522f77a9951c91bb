"""Refit: the chosen model (each member of a chosen ensemble) trained again on train + valid with the
round count its trial chose on validation, ``best_iteration + 1``.

The round count is not scaled for the extra rows (a quarter more data moves the best count little, and
it keeps the refit to the rounds the validation scores describe). A refit model has seen the validation
rows, so its own validation figures say nothing: its ``metadata.json`` keeps the trial's (measured before
the refit) and adds a ``refit`` record (rows, rounds, trial, seconds).
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from app import atomic
from app.search.inprocess import TrialData, train_local
from app.search.raytrain import StreamingData
from app.search.records import FitResult, RefitMember, RefitRecord
from app.search.settings import RayTuneSettings
from app.search.state import VALIDATED_DIR
from app.train.model import METADATA_FILE, save_model, update_metadata

# Ray Train's fixed cost per run on a small machine (start and teardown), for the time-budget check.
RAY_TRAIN_START_S = 15.0
_KEPT = ("metric_name", "best_score", "metrics", "history")


def estimate_seconds(*, trial_seconds: float, rounds_run: int, rounds: int, streaming: bool) -> float:
    """A refit's expected time: its trial's time per round, on a quarter more rows, plus Ray Train's start."""
    per_round = trial_seconds / max(rounds_run, 1)
    return per_round * rounds * 1.25 + (RAY_TRAIN_START_S if streaming else 0.0)


def members(model_dir: Path, *, trial_id: str | None = None) -> list[tuple[Path, str]]:
    """``(directory, trial id)`` of each model in ``model_dir``: an ensemble's members (named by trial
    id in ``ensemble.json``) or the single model itself, whose trial is ``trial_id``."""
    from app.train.ensemble import is_ensemble_dir, read_ensemble

    if is_ensemble_dir(model_dir):
        dirs, _, _ = read_ensemble(model_dir)
        return [(d, d.name) for d in dirs]
    if trial_id is None:
        raise ValueError(f"{model_dir}: a single model's refit needs trial_id=")
    return [(model_dir, trial_id)]


def refit_model(
    model_dir: Path,
    *,
    data: TrialData | StreamingData,
    params: dict[str, dict[str, Any]],
    metric: str,
    threads: int,
    storage_path: Path | str,
    trial_id: str | None = None,
    rounds: dict[str, int] | None = None,
) -> list[RefitMember]:
    """Refit a saved model in place: the single model of trial ``trial_id``, or every member of an
    ensemble with its weights kept. ``params`` maps trial ids to the trials' parameters; ``rounds``, to
    round counts other than the trials' own (cross-validation's)."""
    from app.train.ensemble import ENSEMBLE_FILE

    records = [
        refit_dir(
            d,
            data=data,
            params=params[tid],
            trial_id=tid,
            metric=metric,
            threads=threads,
            storage_path=storage_path,
            rounds=(rounds or {}).get(tid),
        )
        for d, tid in members(model_dir, trial_id=trial_id)
    ]
    info_path = model_dir / ENSEMBLE_FILE
    if info_path.exists():
        atomic.write_json(info_path, {**json.loads(info_path.read_text()), "refit": True})
    return records


def refit_dir(
    model_dir: Path,
    *,
    data: TrialData | StreamingData,
    params: dict[str, Any],
    trial_id: str,
    metric: str,
    threads: int,
    storage_path: Path | str,
    rounds: int | None = None,
) -> RefitMember:
    """Replace the model in ``model_dir`` by its refit on train + valid with ``rounds`` rounds (default:
    its trial's best round count); returns the ``refit`` record."""
    trial_meta = json.loads((model_dir / METADATA_FILE).read_text())
    family = trial_meta["family"]
    rounds = rounds or int(trial_meta["best_iteration"]) + 1
    started = time.monotonic()
    if isinstance(data, StreamingData):
        result = _refit_ray_train(
            data, family, params, rounds=rounds, metric=metric, threads=threads, storage_path=storage_path
        )
    else:
        result = train_local(
            family,
            params,
            data.with_valid_in_train(),
            metric=metric,
            num_boost_round=rounds,
            early_stopping_rounds=None,
            threads=threads,
        )
    record: RefitMember = {
        "trial_id": trial_id,
        "rows": int(result.ingest["rows"]),
        "rounds": int(result.num_rounds),
        "trainer": "ray_train" if isinstance(data, StreamingData) else "in_process",
        "seconds": round(time.monotonic() - started, 3),
    }
    shutil.rmtree(model_dir)
    save_model(result, model_dir)
    update_metadata(model_dir, {**{k: trial_meta[k] for k in _KEPT if k in trial_meta}, "refit": record})
    return record


def _refit_ray_train(
    data: StreamingData,
    family: str,
    params: dict[str, Any],
    *,
    rounds: int,
    metric: str,
    threads: int,
    storage_path: Path | str,
):
    from app.config import TrainConfig
    from app.data.encode import Preprocessor
    from app.train.api import train

    config = TrainConfig(
        family=family,
        params=params,
        num_boost_round=rounds,
        early_stopping_rounds=None,
        checkpoint_every=rounds,
        report_every_s=None,
        num_workers=1,
        cpus_per_worker=float(threads),  # capped by Ray Train so that Ray Data keeps a CPU
        threads_per_worker=threads,
        metrics=[metric],
        storage_path=str(storage_path.resolve()) if isinstance(storage_path, Path) else storage_path,
    )
    return train(
        {"train": data.train.union(data.valid), "valid": data.valid},
        config=config,
        preprocessor=Preprocessor.from_dict(data.preprocessor),
        num_rows=data.n_train + data.n_valid,
        run_name=f"refit-{family}-{uuid.uuid4().hex[:8]}",
    )


def refit_chosen(
    result: FitResult,
    board: pd.DataFrame,
    data: TrialData | StreamingData,
    sspec,
    settings: RayTuneSettings,
    *,
    threads: int,
    deadline: float | None,
    out_dir: Path,
) -> RefitRecord:
    """Refit the chosen model's members on train + valid in place, keeping the validated choice in
    ``validated_model/``; skipped (with the reason) when off or when it would overrun the budget.

    After cross-validation the refit is part of the choice: it always runs (its time was kept out of
    cross-validation's deadline), with each member's folds' mean best round count."""
    from app.train.load import load_model

    if not settings.refit:
        return RefitRecord(done=False, reason="refit=False")
    if result.bagging["done"]:  # its folds' models together trained on every train + valid row
        return RefitRecord(done=False, reason="bagged")
    model_dir = result.model_dir
    rows = board.set_index("trial_id")
    best_id = result.best_trial
    cv_rounds = None
    if result.cv["done"]:
        cv_rounds = {c["trial_id"]: c["rounds"] for c in result.cv["candidates"]}
    if cv_rounds is None and deadline is not None:
        expected = 0.0
        for d, trial_id in members(model_dir, trial_id=best_id):
            meta = json.loads((d / "metadata.json").read_text())
            seconds = rows.loc[trial_id, "train_time_s"]
            expected += estimate_seconds(
                trial_seconds=float(seconds) if pd.notna(seconds) else 0.0,
                rounds_run=int(meta["num_rounds"]),
                rounds=int(meta["best_iteration"]) + 1,
                streaming=isinstance(data, StreamingData),
            )
        if time.monotonic() + expected > deadline:
            return RefitRecord(done=False, reason=f"time budget: the refit needs ~{expected:.0f} s")
    validated = out_dir / VALIDATED_DIR
    shutil.rmtree(validated, ignore_errors=True)
    shutil.copytree(model_dir, validated)
    result.validated_model_dir = validated
    records = refit_model(
        model_dir,
        data=data,
        params={str(t): json.loads(p) for t, p in rows["params"].items()},
        metric=sspec.metric,
        threads=max(1, threads),
        # Beside the search's storage when it has one: on several nodes it is the shared one.
        storage_path=f"{settings.storage_path.rstrip('/')}/refit"
        if settings.storage_path
        else out_dir / "refit",
        trial_id=best_id,
        rounds=cv_rounds,
    )
    result.model = load_model(model_dir)
    return RefitRecord(done=True, reason=None, members=records)
