"""The fit's time and memory arithmetic: what the search may spend of ``time_budget_s``, the deadline the
stages after it share, and whether the encoded data fits in memory."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from app.search import cv

if TYPE_CHECKING:
    from app.config import DataConfig
    from app.data import PreparedData
    from app.search.settings import RayTuneSettings

# Trials a timed search is expected to reach at most, for the tracking time kept from it (a generous bound
# for small data; bench/search.py counts them); the stages after the search recount with the real number.
SEARCH_TRIALS_GUESS = 500
# The shortest search: one that cannot finish a trial is no answer; past the budget, not silently empty,
# is the lesser failure (the leaderboard shows the overrun).
MIN_SEARCH_S = 15.0


def tracking_seconds(trials: int, *, track: bool) -> float:
    """Seconds MLflow takes after the search: a fixed part for the parent run, the model and the report
    (the store is opened during the search) and a part per trial's child run; estimates for a local
    store, measured as the README's performance section says."""
    return 2.5 + 0.02 * trials if track else 0.0


def search_budget(settings: RayTuneSettings, data: Any, *, started: float, track: bool) -> float | None:
    """The search's time budget: what is left of ``time_budget_s`` less the reserve for the ensemble and
    saving (a tenth, at least 5 s) and for tracking, and less cross-validation's share when it will run."""
    if settings.time_budget_s is None:
        budget = None
    else:
        reserve = max(5.0, 0.1 * settings.time_budget_s) + tracking_seconds(
            min(settings.num_samples, SEARCH_TRIALS_GUESS), track=track
        )
        budget = max(MIN_SEARCH_S, settings.time_budget_s - (time.monotonic() - started) - reserve)
    if cv.folds_for(settings, data)[0] == 0:
        return budget
    return cv.search_budget(budget, time_budget_s=settings.time_budget_s)


def after_search_deadline(
    settings: RayTuneSettings, *, started: float, trials: int, track: bool
) -> float | None:
    """When the stages after the search (choice, cross-validation, refit) must end: tracking's share of
    the budget is known once the trials are counted."""
    if settings.time_budget_s is None:
        return None
    return started + settings.time_budget_s - tracking_seconds(trials, track=track)


def valid_rows(train_rows: int, config: DataConfig) -> int:
    """Validation rows expected beside ``train_rows`` training rows, from the split fractions."""
    share = max(1.0 - config.valid_fraction - config.test_fraction, 1e-9)
    return int(train_rows * config.valid_fraction / share)


def encoded_bytes(prepared: PreparedData, config: DataConfig) -> int:
    """Training plus validation rows as float32 features and label, from the training profile's row
    count and the split fractions (known before any row is read)."""
    rows = prepared.profile.num_rows + valid_rows(prepared.profile.num_rows, config)
    return int(rows * 4 * (len(prepared.preprocessor.columns) + 1))
