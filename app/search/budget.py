"""The fit's time and memory arithmetic: when the search ends (``SearchWindow``), the deadline the stages
after it share, and whether the encoded data fits in memory.

Every stage is measured from the start of the fit, so a slow start (Ray, reading the data) shortens the
search, never the end: the search gets what is left of ``time_budget_s`` less a reserve for the stages
after it, and trials stop boosting at its deadline with the model they have.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.search import cv

if TYPE_CHECKING:
    from app.config import DataConfig
    from app.data import PreparedData
    from app.search.settings import RayTuneSettings

# Trials a timed search is expected to reach at most, for the tracking time kept from it: a generous
# bound for small data (bench/search.py counts them), and at most TRIALS_PER_S per second of search (a
# trial's start, reports and checkpoint alone take a good part of a second); the stages after the search
# recount with the real number.
SEARCH_TRIALS_GUESS = 500
TRIALS_PER_S = 4.0
# MLflow's time per trial (its child run: three calls) after the search, on a local store: a first guess,
# measured by bench/quality.py (docs/performance.md). Each trial past the count the window planned for
# brings the search's deadline this much earlier (``app.search.deadline``); a slower store eats into the
# reserves for the end and CV, and tracking itself logs trials only while its clock allows.
TRACK_PER_TRIAL_S = 0.02
# The refit of the chosen models on train + valid, when cross-validation does not run (more than
# cv.AUTO_MAX_ROWS rows, Ray Train trials, or cv_folds=0): a share of the budget, at most a third of what the
# search would have. Without a share of its own the refit only got what the end reserve left, and on
# large data it was skipped, losing the rows of the validation split.
REFIT_SHARE = 0.08
# Over the memory limit with a row ladder, the search runs on a sample and the chosen model then trains on
# every row on Ray Train (``app.search.refit.grow_to_all_rows``): a share of the budget, at most half of
# what the search would have. A first guess: that run's rate over the streaming splits is known only once
# it runs, and the growth is skipped when the trials' measured seconds per row say it cannot end in time.
GROW_SHARE = 0.4
# What follows the deadline and does not watch the clock: the trials' last rounds and final reports, Tune
# winding down, the leaderboard, loading and predicting the best trial on the validation rows, the
# ensemble, saving the model and fit.json. A share of the budget (they grow with the data, as the budget a
# user gives does), at least END_S; the trials' reported persist and predict times move the deadline
# earlier when they need more (``app.search.deadline.ChoiceMeter``).
END_SHARE = 0.05
END_S = 2.0
# Plus, for predicting the validation rows there (the trials' last scores, the choice, the prediction
# reference), seconds per row and model output (a class's probability, or the one value).
END_PER_VALUE_S = 2e-5
# Trials still running this long after the deadline (a trial process that started late, or a first round
# longer than the window) are killed (``app.search.deadline.HardStop``): room for a trial's last round and
# its final report. A killed trial keeps the model it persisted last (``app.search.candidates``).
BACKSTOP_SHARE = 0.05
BACKSTOP_S = 3.0


@dataclass(frozen=True)
class SearchWindow:
    """When the search ends: at ``deadline`` (a Unix time, which trials in other processes compare with
    ``time.time()``) no trial starts and running ones stop after their current round, ``seconds`` from
    the search's start; Tune's time budget, ``backstop_s``, stops whatever still runs a little later.

    The reserve for tracking counted ``trials`` trials; each trial started beyond them moves the deadline
    ``per_trial_s`` earlier, so that many short trials cannot take the time of the stages after the search.
    """

    seconds: float
    deadline: float
    backstop_s: float = 0.0
    trials: int = 0
    per_trial_s: float = 0.0


def tracking_seconds(trials: int, *, track: bool) -> float:
    """Seconds MLflow takes after the search: a fixed part for the parent run, the model and the report
    (the store is opened during the search) and a part per trial's child run; estimates for a local
    store (docs/performance.md)."""
    return 2.5 + TRACK_PER_TRIAL_S * trials if track else 0.0


def end_seconds(time_budget_s: float, data: Any = None) -> float:
    """The reserve for what follows the deadline and does not watch the clock, for ``data``'s validation
    rows (``TrialData`` or ``StreamingData``; None: none)."""
    return max(END_S, END_SHARE * time_budget_s) + END_PER_VALUE_S * _valid_values(data)


def _valid_values(data: Any) -> int:
    """Validation rows times the model's outputs per row (its classes beyond two, else one)."""
    if data is None:
        return 0
    rows = len(data.y_valid) if hasattr(data, "y_valid") else int(data.n_valid)
    classes = len(data.preprocessor.get("classes") or [])
    return rows * (classes if classes > 2 else 1)


def search_window(
    settings: RayTuneSettings,
    data: Any,
    *,
    started: float,
    track: bool,
    grow: bool = False,
    clock=time.monotonic,
    wall_clock=time.time,
) -> SearchWindow | None:
    """The search's window (None without ``time_budget_s``): what is left of the budget since
    ``started`` (``clock``'s time) less the reserve for the end and tracking, and less
    cross-validation's share when it will run (at most a third of what is left: on a short budget the
    search comes first; none when the share could not even start cross-validation's workers), else the
    share of growing the chosen model to every row (``grow``), else the refit's share when there is one.

    Nothing is guaranteed to the search: when the start took the budget, the window is empty and the
    first trials stop after one round, which still gives a model.
    """
    budget = settings.time_budget_s
    if budget is None:
        return None
    left = budget - (clock() - started)
    trials = min(settings.num_samples or SEARCH_TRIALS_GUESS, SEARCH_TRIALS_GUESS, int(TRIALS_PER_S * left))
    seconds = max(0.0, left - end_seconds(budget, data) - tracking_seconds(max(trials, 1), track=track))
    cv_share = min(cv.SHARE * budget, seconds / 3)
    if cv.folds_for(settings, data)[0]:
        if cv_share > cv.WORKER_START_S:  # else it could not start a fold
            seconds -= cv_share
    elif grow:
        seconds -= min(GROW_SHARE * budget, seconds / 2)
    elif settings.refit:  # no cross-validation: the refit on train + valid takes time
        seconds -= min(REFIT_SHARE * budget, seconds / 3)
    slack = max(BACKSTOP_S, BACKSTOP_SHARE * budget)
    return SearchWindow(
        seconds=seconds,
        deadline=wall_clock() + seconds,
        backstop_s=seconds + slack,
        trials=max(trials, 1),
        per_trial_s=TRACK_PER_TRIAL_S if track else 0.0,
    )


def after_search_deadline(
    settings: RayTuneSettings, *, started: float, trials: int, track: bool
) -> float | None:
    """When the stages that watch the clock (cross-validation, refit) must end: before tracking's time,
    known once the trials are counted, and the few seconds of saving and loading the model after them."""
    if settings.time_budget_s is None:
        return None
    return started + settings.time_budget_s - tracking_seconds(trials, track=track) - END_S


def report_by(settings: RayTuneSettings, *, started: float) -> float | None:
    """Past this time the run report is not built: the budget has no room left for it (the model, the
    leaderboard and every trial are tracked all the same)."""
    if settings.time_budget_s is None:
        return None
    return started + settings.time_budget_s - END_S


def valid_rows(train_rows: int, config: DataConfig) -> int:
    """Validation rows expected beside ``train_rows`` training rows, from the split fractions."""
    share = max(1.0 - config.valid_fraction - config.test_fraction, 1e-9)
    return int(train_rows * config.valid_fraction / share)


def encoded_bytes(prepared: PreparedData, config: DataConfig) -> int:
    """Training plus validation rows as float32 features and label, from the training profile's row
    count and the split fractions (known before any row is read)."""
    rows = prepared.profile.num_rows + valid_rows(prepared.profile.num_rows, config)
    return int(rows * 4 * (len(prepared.preprocessor.columns) + 1))
