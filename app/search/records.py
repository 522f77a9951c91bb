"""What a fit returns and records, typed: ``FitResult``, and its ``refit``, ``cv`` and ``tracking`` entries
(also in ``fit.json``): ``TypedDict``s, so they are JSON as they are and read like the file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NotRequired, TypedDict

import pandas as pd

from app.search.leaderboard import families


class RefitMember(TypedDict):
    """One refit model: its trial, the rows and rounds it was trained with, where and how long; for a
    member grown from a row ladder's sample to every row (``app.search.refit.grow_to_all_rows``), the
    sample's rows and whether the all-rows model replaced the sample's (it scored at least as well)."""

    trial_id: str
    rows: int
    rounds: int
    trainer: str
    seconds: float
    sample_rows: NotRequired[int]
    replaced: NotRequired[bool]


class RefitRecord(TypedDict):
    """Whether the chosen model was refit on train + valid (``reason`` when not), and each member's."""

    done: bool
    reason: str | None
    members: NotRequired[list[RefitMember]]
    all_rows: NotRequired[list[RefitMember]]


class CVCandidate(TypedDict):
    """A cross-validated trial: its out-of-fold score, refit rounds and each fold's best iteration."""

    trial_id: str
    family: str
    cv_score: float
    rounds: int
    best_iterations: list[int]
    seconds: float


class CVRecord(TypedDict):
    """Whether cross-validation chose the model (``reason`` when not): folds, rows, candidates."""

    done: bool
    reason: str | None
    folds: NotRequired[int]
    rows: NotRequired[int]
    candidates: NotRequired[list[CVCandidate]]
    skipped: NotRequired[list[dict[str, str]]]
    seconds: NotRequired[float]


class BaggedMember(TypedDict):
    """A member of the chosen model kept as a bag: its trial, its weight, its fold models."""

    trial_id: str
    weight: float
    folds: int


class BaggingRecord(TypedDict):
    """Whether the chosen model is its cross-validation folds' models (``reason`` when not)."""

    done: bool
    reason: str | None
    folds: NotRequired[int]
    members: NotRequired[list[BaggedMember]]


class SearchRecord(TypedDict):
    """How far the search got: its trials by status (``completed``, ``deadline``: ended by the time
    budget with their model so far, ``stopped`` by ASHA, ``errored``), its seconds and its window's (None
    without a time budget), what ended it: ``time budget`` or ``num_samples``, each model family's trials
    and best rank (``families``, ``app.search.leaderboard.families``), the trials on each rung of a row
    ladder (``row_ladder``: rows and trials, ``app.search.ladder``), and a ``note`` when the
    model comes from the driver instead (``app.search.fallback``: the start left no time for a search, or
    no trial persisted a model; ``fallback`` then)."""

    trials: int
    statuses: dict[str, int]
    seconds: float
    window_s: float | None
    ended_by: str
    note: NotRequired[str]
    fallback: NotRequired[bool]
    best_reported: NotRequired[dict[str, Any]]
    persisted: NotRequired[list[dict[str, Any]]]
    families: NotRequired[dict[str, dict[str, Any]]]
    row_ladder: NotRequired[list[dict[str, int]]]


def search_record(
    board: pd.DataFrame, settings: Any, *, window: Any, seconds: float, mode: str
) -> SearchRecord:
    """The ``search`` entry of ``fit.json`` from the leaderboard and the search's ``SearchWindow``: also
    every trial's persisted model (``persisted``: trial, status, score, model location or None) and the
    best validation score any trial reported (``best_reported``), persisted or not."""
    statuses = {str(k): int(v) for k, v in board["status"].value_counts().items()}
    full = settings.num_samples is not None and len(board) >= settings.num_samples
    timed = window is not None and (statuses.get("deadline", 0) > 0 or seconds >= window.seconds or not full)
    record: SearchRecord = {
        "trials": len(board),
        "statuses": statuses,
        "seconds": round(seconds, 3),
        "window_s": None if window is None else round(window.seconds, 3),
        "ended_by": "time budget" if timed else "num_samples",
        "families": families(board),
        "persisted": [
            {
                "trial_id": str(r.trial_id),
                "family": r.family,
                "status": r.status,
                "score": None if pd.isna(r.score) else float(r.score),
                "model": r.checkpoint if isinstance(r.checkpoint, str) else None,
            }
            for r in board.itertuples()
        ],
    }
    if "rows" in board and board["rows"].nunique() > 1:  # a row ladder: its rungs' rows and trials
        counts = board["rows"].dropna().astype(int).value_counts().sort_index()
        record["row_ladder"] = [{"rows": int(r), "trials": int(n)} for r, n in counts.items()]
    best = _best_reported(board, maximize=mode == "max")
    if best is not None:
        record["best_reported"] = best
    return record


def _best_reported(board: pd.DataFrame, *, maximize: bool) -> dict[str, Any] | None:
    """The best validation score any trial reported (its reports' history), and that trial."""
    import json

    best: dict[str, Any] | None = None
    for r in board.itertuples():
        values = json.loads(r.history or "[]") if isinstance(r.history, str) else []
        if not values:
            continue
        top = max(values) if maximize else min(values)
        if best is None or (top > best["score"] if maximize else top < best["score"]):
            best = {"trial_id": str(r.trial_id), "family": r.family, "score": float(top)}
    return best


class TrackingRecord(TypedDict, total=False):
    """Where the fit was tracked: the parent run, the store, the registered version, why the run report
    was not built or what of it was cut (``report``: no time left), how many trials were logged as
    child runs when the budget cut them (``trials_logged``, ``trials_cut``); or the error."""

    run_id: str
    tracking_uri: str
    registered: str | None
    report: str
    trials_logged: int
    trials_cut: str
    error: str


@dataclass
class FitResult:
    """What a fit produced; ``model`` is the chosen predictor (ensemble or best single model).

    With a refit, ``model_dir`` holds the refit model(s) and ``validated_model_dir`` the same choice as
    trained in the search, which ``best_score`` and ``ensemble_score`` describe (validation scores are
    measured before the refit: after it the validation rows are training rows). ``refit`` records what
    was refit (``done``, ``reason``, and per member: rows, rounds, seconds); ``trainer`` says where the
    trials trained: ``in_process`` or ``ray_train``.

    With cross-validation (``cv["done"]``; small in-memory data, see ``RayTuneSettings.cv_folds``) the
    model and ensemble weights are chosen on out-of-fold predictions over all train + valid rows:
    ``best_score`` and ``ensemble_score`` are those cross-validation scores, the members are refit with
    their folds' mean best round count, and ``validated_model_dir`` holds the chosen members as trained
    in the search. ``cv`` records the folds, the candidates' scores and rounds, those skipped, the
    seconds, or why cross-validation did not run. With ``bagging`` (``RayTuneSettings.bagging``) the model
    is those folds' models instead of a refit: ``bagging`` records each member's trial, weight and folds.
    ``best_trial`` is the best single model's trial.
    ``search`` says how far the search got (trials by status, seconds, what ended it).
    """

    out_dir: Path
    model_dir: Path
    leaderboard: pd.DataFrame
    model: Any
    chosen: str
    metric: str
    mode: str
    best_score: float
    ensemble_score: float | None
    ensemble_weights: dict[str, float] = field(default_factory=dict)
    validated_model_dir: Path | None = None
    refit: RefitRecord = field(default_factory=lambda: RefitRecord(done=False, reason="not run"))
    cv: CVRecord = field(default_factory=lambda: CVRecord(done=False, reason="not run"))
    bagging: BaggingRecord = field(default_factory=lambda: BaggingRecord(done=False, reason="not run"))
    best_trial: str = ""
    trainer: str = "in_process"
    wall_time_s: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    tracking: TrackingRecord = field(default_factory=lambda: TrackingRecord())
    search: SearchRecord | None = None
