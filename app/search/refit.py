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
_KEPT = ("metric_name", "best_score", "metrics", "history", "all_rows")


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
        result = _ray_train(
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


def _ray_train(
    data: StreamingData,
    family: str,
    params: dict[str, Any],
    *,
    rounds: int,
    metric: str,
    threads: int,
    storage_path: Path | str,
    early_stopping_rounds: int | None = None,
    deadline: float | None = None,
):
    """One Ray Train run over the streaming splits: without ``early_stopping_rounds``, ``rounds`` rounds on
    train + valid (a refit); with it, on the training rows with early stopping on the validation rows,
    stopping at ``deadline`` (a Unix time) with the model as of its best round (growing to every row)."""
    from app.config import TrainConfig
    from app.data.encode import Preprocessor
    from app.train.api import train

    config = TrainConfig(
        family=family,
        params=params,
        num_boost_round=rounds,
        early_stopping_rounds=early_stopping_rounds,
        checkpoint_every=rounds,
        report_every_s=None,
        num_workers=1,
        cpus_per_worker=float(threads),  # capped by Ray Train so that Ray Data keeps a CPU
        threads_per_worker=threads,
        metrics=[metric],
        storage_path=str(storage_path.resolve()) if isinstance(storage_path, Path) else storage_path,
    )
    refit = early_stopping_rounds is None
    return train(
        {"train": data.train.union(data.valid) if refit else data.train, "valid": data.valid},
        config=config,
        preprocessor=Preprocessor.from_dict(data.preprocessor),
        num_rows=data.n_train + data.n_valid if refit else data.n_train,
        run_name=f"{'refit' if refit else 'all-rows'}-{family}-{uuid.uuid4().hex[:8]}",
        deadline=deadline,
    )


def grow_to_all_rows(
    result: FitResult,
    board: pd.DataFrame,
    data: TrialData | StreamingData,
    sspec,
    settings: RayTuneSettings,
    *,
    threads: int,
    deadline: float | None,
    storage_path: Path | str,
) -> list[RefitMember]:
    """After a row ladder (``app.search.ladder``): each chosen member whose trial trained on a sample is
    trained again on every training row of ``data`` (in process, or on Ray Train from the streaming
    splits), with early stopping on the validation rows, and replaces the sample's model when it scores at
    least as well. A member whose fit would end past ``deadline`` (at its trial's measured seconds per
    row, from the fits of its configuration on the ladder's rungs) keeps its sample's model, as does one
    whose fit the deadline cut short of it."""
    from app.search.ladder import seconds_on

    rows = board.set_index("trial_id")
    streaming = isinstance(data, StreamingData)
    n = data.n_train if streaming else len(data.y_train)
    # The seconds of each configuration's finished fits on the rungs it climbed.
    done = board[board["status"] == "completed"].dropna(subset=["rows", "train_time_s"])
    timed = {
        key: list(zip(g["rows"].astype(int), g["train_time_s"].astype(float), strict=True))
        for key, g in done.groupby(["family", "params"])
    }
    better = (lambda a, b: a >= b) if sspec.mode == "max" else (lambda a, b: a <= b)
    records: list[RefitMember] = []
    for d, trial_id in members(result.model_dir, trial_id=result.best_trial):
        sample = rows.loc[trial_id, "rows"]
        if pd.isna(sample) or int(sample) >= n:
            continue
        seconds = rows.loc[trial_id, "train_time_s"]
        own = [(int(sample), float(seconds) if pd.notna(seconds) else 0.0)]
        expected = seconds_on(timed.get((rows.loc[trial_id, "family"], rows.loc[trial_id, "params"]), own), n)
        expected += RAY_TRAIN_START_S if streaming else 0.0
        if deadline is not None and time.monotonic() + expected > deadline:
            continue
        meta = json.loads((d / METADATA_FILE).read_text())
        params = json.loads(rows.loc[trial_id, "params"])
        until = None if deadline is None else time.time() + deadline - time.monotonic()
        started = time.monotonic()
        if streaming:
            trained = _ray_train(
                data,
                meta["family"],
                params,
                rounds=settings.max_rounds,
                metric=sspec.metric,
                threads=threads,
                storage_path=storage_path,
                early_stopping_rounds=settings.early_stopping_rounds,
                deadline=until,
            )
        else:
            trained = train_local(
                meta["family"],
                params,
                data,
                metric=sspec.metric,
                num_boost_round=settings.max_rounds,
                early_stopping_rounds=settings.early_stopping_rounds,
                threads=threads,
                deadline=until,
            )
        replaced = better(trained.best_score, float(meta["best_score"]))
        record: RefitMember = {
            "trial_id": trial_id,
            "rows": n,
            "rounds": int(trained.best_iteration) + 1,
            "trainer": "ray_train" if streaming else "in_process",
            "seconds": round(time.monotonic() - started, 3),
            "sample_rows": int(sample),
            "replaced": bool(replaced),
        }
        if replaced:
            shutil.rmtree(d)
            save_model(trained, d)
            update_metadata(d, {"all_rows": record})
        records.append(record)
    return records


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
    every_row: StreamingData | None = None,
) -> RefitRecord:
    """Refit the chosen model's members on train + valid in place, keeping the validated choice in
    ``validated_model/``; skipped (with the reason) when off or when it would overrun the budget.

    After a row ladder, members trained on a sample are first grown to every training row
    (``grow_to_all_rows``, recorded under ``all_rows``); the refit follows only when every member then
    holds a model of every row. ``every_row``: the data over the memory limit whose sample the search ran
    on; members grow to it on Ray Train, and there is no refit. After cross-validation the refit is part
    of the choice: it always runs (its time was kept out of cross-validation's deadline), with each
    member's folds' mean best round count."""
    from app.train.load import load_model

    grown: list[RefitMember] = []
    storage = (
        f"{settings.storage_path.rstrip('/')}/refit" if settings.storage_path else out_dir / "refit"
    )  # beside the search's storage when it has one: on several nodes it is the shared one
    # Cross-validation's models trained on folds of every row, whatever rows their trials had.
    if isinstance(data, TrialData) and "rows" in board and not result.cv["done"]:
        grown = grow_to_all_rows(
            result,
            board,
            every_row or data,
            sspec,
            settings,
            threads=max(1, threads),
            deadline=deadline,
            storage_path=storage,
        )
        if any(g["replaced"] for g in grown):
            result.model = load_model(result.model_dir)
    if every_row is not None:
        done = sum(g["replaced"] for g in grown)
        return RefitRecord(
            done=False,
            reason=f"the search ran on a sample of the rows; {done} member(s) trained on every row instead",
            all_rows=grown,
        )
    record = _refit(
        result,
        board,
        data,
        sspec,
        settings,
        deadline=deadline,
        out_dir=out_dir,
        threads=threads,
        grown=grown,
        storage_path=storage,
    )
    if grown:
        record["all_rows"] = grown
    return record


def _refit(
    result: FitResult,
    board: pd.DataFrame,
    data: TrialData | StreamingData,
    sspec,
    settings: RayTuneSettings,
    *,
    threads: int,
    deadline: float | None,
    out_dir: Path,
    grown: list[RefitMember],
    storage_path: Path | str,
) -> RefitRecord:
    """``refit_chosen`` after the members' growth to every row."""
    from app.train.load import load_model

    if not settings.refit:
        return RefitRecord(done=False, reason="refit=False")
    if result.bagging["done"]:  # its folds' models together trained on every train + valid row
        return RefitRecord(done=False, reason="bagged")
    model_dir = result.model_dir
    rows = board.set_index("trial_id")
    best_id = result.best_trial
    if isinstance(data, TrialData):
        # A sample's rounds say nothing of every row's: a member still on a sample is not refit.
        whole = {g["trial_id"] for g in grown if g["replaced"]}
        sampled = [
            t
            for _, t in members(model_dir, trial_id=best_id)
            if t not in whole
            and pd.notna(rows.loc[t, "rows"])
            and int(rows.loc[t, "rows"]) < len(data.y_train)
        ]
        if sampled:
            return RefitRecord(
                done=False,
                reason=f"{len(sampled)} member(s) kept a model of a sample of the rows (row ladder)",
            )
    cv_rounds = None
    if result.cv["done"]:
        cv_rounds = {c["trial_id"]: c["rounds"] for c in result.cv["candidates"]}
    if cv_rounds is None and deadline is not None:
        expected = 0.0
        # A member grown to every row took its all-rows fit's seconds, not its trial's on a sample.
        measured = {g["trial_id"]: g["seconds"] for g in grown if g["replaced"]}
        for d, trial_id in members(model_dir, trial_id=best_id):
            meta = json.loads((d / "metadata.json").read_text())
            seconds = measured.get(trial_id, rows.loc[trial_id, "train_time_s"])
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
        storage_path=storage_path,
        trial_id=best_id,
        rounds=cv_rounds,
    )
    result.model = load_model(model_dir)
    return RefitRecord(done=True, reason=None, members=records)
