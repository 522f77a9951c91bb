"""What a fit records, typed: the ``refit``, ``cv`` and ``tracking`` entries of ``FitResult`` (and of
``fit.json``). They are ``TypedDict``s, so they are JSON as they are and read like the file."""

from __future__ import annotations

from typing import NotRequired, TypedDict


class RefitMember(TypedDict):
    """One refit model: its trial, the rows and rounds it was trained with, where and how long."""

    trial_id: str
    rows: int
    rounds: int
    trainer: str
    seconds: float


class RefitRecord(TypedDict):
    """Whether the chosen model was refit on train + valid (``reason`` when not), and each member's."""

    done: bool
    reason: str | None
    members: NotRequired[list[RefitMember]]


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


class TrackingRecord(TypedDict, total=False):
    """Where the fit was tracked: the parent run, the store, the registered version; or the error."""

    run_id: str
    tracking_uri: str
    registered: str | None
    error: str
