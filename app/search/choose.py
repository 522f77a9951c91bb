"""Choosing the model after the search: the best single trial or a greedy ensemble of the best trials,
on out-of-fold predictions when cross-validation runs, else on the validation rows; saved as
``model/`` in the run directory."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from app.search import cv
from app.search import ensemble as ens
from app.search.inprocess import TrialData, ValidRows, predict_encoded
from app.search.raytrain import StreamingData
from app.search.records import BaggingRecord, CVRecord, FitResult
from app.search.settings import RayTuneSettings
from app.search.state import MODEL_DIR
from app.train.ensemble import save_ensemble
from app.train.metrics import get_metric

# Choosing, saving and loading the model after cross-validation (kept out of its deadline).
CHOOSE_S = 2.0


def choose_model(
    board: pd.DataFrame,
    valid: ValidRows,
    sspec,
    settings: RayTuneSettings,
    *,
    data: TrialData | StreamingData | None = None,
    deadline: float | None = None,
    cpus: float = 1.0,
    out_dir: Path,
) -> FitResult:
    """Choose the best single model or a greedy ensemble of the best trials: on out-of-fold
    predictions over train + valid when cross-validation runs (it adds ``cv_score`` to ``board``),
    else on the validation rows (the best trial's, then the next ones' while ``deadline`` has not
    passed)."""
    run, cv_record = cross_validate_best(board, data, sspec, settings, deadline=deadline, cpus=cpus)
    members_dir = out_dir / "trials"
    shutil.rmtree(members_dir, ignore_errors=True)
    scored: list[cv.Scored] = []
    if run is not None:
        checkpoints = board.set_index("trial_id")["checkpoint"]
        scored = run.scored[: max(1, settings.ensemble_size)]
        dirs = [_checkout(checkpoints[c.trial_id], members_dir / c.trial_id) for c in scored]
        preds, y, w = [c.oof for c in scored], run.y, run.w
        board["cv_score"] = board["trial_id"].map({c.trial_id: c.score for c in run.scored})
    else:
        done = board[board["checkpoint"].notna()].head(max(1, settings.ensemble_size))
        dirs, preds, y, w = [], [], valid.y, valid.w
        for r in done.itertuples():  # best first; past the deadline the ensemble draws on those predicted
            if dirs and deadline is not None and time.monotonic() > deadline:
                break
            dirs.append(_checkout(r.checkpoint, members_dir / str(r.trial_id)))
            preds.append(_predict(dirs[-1], valid))
    maximize = sspec.mode == "max"
    weights, ens_score = ens.select(preds, y, metric=sspec.metric, maximize=maximize, weight=w)
    best_single = get_metric(sspec.metric).score(y, preds[0], w)
    model_dir = out_dir / MODEL_DIR
    better = ens_score > best_single if maximize else ens_score < best_single
    chosen = "ensemble" if settings.ensemble_size > 1 and better and (weights > 0).sum() > 1 else "single"
    info = {
        "metric": sspec.metric,
        "mode": sspec.mode,
        "score": ens_score if chosen == "ensemble" else best_single,
        "best_single_score": best_single,
        "task": sspec.task,
        **({"cv_folds": run.folds} if run is not None else {}),
    }
    bagging = BaggingRecord(done=False, reason=_no_bagging(run, settings))
    if bagging["reason"] is None:
        kept = weights if chosen == "ensemble" else np.eye(len(dirs))[0]
        bagging = _save_bags(scored, kept, model_dir, info=info)
    elif chosen == "ensemble":
        _save_choice(dirs, weights, model_dir, info=info)
    else:
        _save_choice(dirs[:1], None, model_dir)
    from app.train.load import load_model

    return FitResult(
        out_dir=out_dir,
        model_dir=model_dir,
        validated_model_dir=model_dir,
        leaderboard=board.drop(columns=["checkpoint", "history"]),
        model=load_model(model_dir),
        chosen=chosen,
        metric=sspec.metric,
        mode=sspec.mode,
        best_score=best_single,
        ensemble_score=ens_score,
        ensemble_weights={d.name: float(wt) for d, wt in zip(dirs, weights, strict=True) if wt > 0},
        cv=cv_record,
        bagging=bagging,
        best_trial=dirs[0].name,
    )


def _no_bagging(run: cv.CVRun | None, settings: RayTuneSettings) -> str | None:
    """Why the chosen model is not bagged, or None when it is."""
    if not settings.bagging:
        return "bagging=False"
    if run is None:
        return "no cross-validation: no fold models"
    return None


def _save_bags(scored: list[cv.Scored], weights: np.ndarray, model_dir: Path, *, info: dict) -> BaggingRecord:
    """Write each chosen member's fold models to ``model_dir`` as members of one ensemble, each weighing
    its member's weight over the folds: the same directory, loader, serving and tracking as any ensemble.
    """
    from app.train.model import save_model

    shutil.rmtree(model_dir, ignore_errors=True)
    dirs, fold_weights, members = [], [], []
    for c, wt in zip(scored, weights, strict=False):
        if wt <= 0:
            continue
        for k, result in enumerate(c.models):
            dirs.append(save_model(result, model_dir / "members" / f"{c.trial_id}-fold{k}"))
            fold_weights.append(wt / len(c.models))
        members.append({"trial_id": c.trial_id, "weight": float(wt), "folds": len(c.models)})
    save_ensemble(dirs, np.asarray(fold_weights), model_dir, info={**info, "bagged": members})
    return BaggingRecord(done=True, reason=None, folds=members[0]["folds"], members=members)


def _save_choice(
    dirs: list[Path], weights: np.ndarray | None, model_dir: Path, *, info: dict | None = None
) -> None:
    """Write the chosen model to ``model_dir``: the one trial's model, or the members with a weight and
    the ensemble file."""
    shutil.rmtree(model_dir, ignore_errors=True)
    if weights is None:
        shutil.copytree(dirs[0], model_dir)
        return
    member_dirs = []
    for d, wt in zip(dirs, weights, strict=True):
        if wt > 0:
            member_dirs.append(shutil.copytree(d, model_dir / "members" / d.name))
    save_ensemble([Path(m) for m in member_dirs], weights[weights > 0], model_dir, info=info or {})


def cross_validate_best(
    board: pd.DataFrame,
    data: TrialData | StreamingData | None,
    sspec,
    settings: RayTuneSettings,
    *,
    deadline: float | None,
    cpus: float,
) -> tuple[cv.CVRun | None, CVRecord]:
    """Cross-validate the best trials when ``cv.folds_for`` says so, leaving before ``deadline`` the
    time to refit the ensemble's members; the run (None if nothing was kept) and its record."""
    folds, reason = cv.folds_for(settings, data) if data is not None else (0, "no data")
    if not folds:
        return None, CVRecord(done=False, reason=reason)
    cands = cv.candidates(board, top_k=settings.cv_top_k)
    cv_deadline = None
    if deadline is not None:
        from app.search import refit

        # A member's refit at its trial's round count (the folds' count is not known yet).
        refit_s = sum(
            refit.estimate_seconds(trial_seconds=c.train_time_s, rounds_run=1, rounds=1, streaming=False)
            for c in cands[: max(1, settings.ensemble_size)]
        )
        cv_deadline = deadline - refit_s - CHOOSE_S
    run = cv.cross_validate(
        cands,
        data.with_valid_in_train(),
        folds=folds,
        task=sspec.task,
        metric=sspec.metric,
        maximize=sspec.mode == "max",
        max_rounds=settings.max_rounds,
        early_stopping_rounds=settings.early_stopping_rounds,
        trial_rows=len(data.y_train),
        seed=settings.seed,
        deadline=cv_deadline,
        slots=max(1, int(cpus)),
        keep_models=settings.bagging,
    )
    return (run if run.scored else None), run.record()


def _checkout(checkpoint: str, directory: Path) -> Path:
    """A trial's checkpoint (its saved model) copied to ``directory``."""
    from ray.tune import Checkpoint

    Checkpoint(checkpoint).to_directory(str(directory))
    return directory


def _predict(model_dir: Path, valid: ValidRows) -> np.ndarray:
    """A saved model's predictions for encoded rows: probabilities ``(n, k)`` or values ``(n,)``."""
    from app.train.load import load_model

    predictor = load_model(model_dir)
    return predict_encoded(predictor.family, predictor.model, predictor.preprocessor, valid.x)
