"""A model when the start of the fit left no time for a search: the first initial point trained in the
driver's own process until the deadline, as a one-trial leaderboard.

Tune starts a process per concurrent trial, and those starts take seconds (many more on a loaded
machine): with a shorter search window, a search would deliver its first model well past the deadline.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from app.search import leaderboard
from app.search.inprocess import TrialData, train_local
from app.search.records import SearchRecord, search_record
from app.search.spaces import initial_points, split_config

# A search window shorter than this trains one model in the driver instead: about what the start of the
# trials' processes and Tune's own start and end take on a quiet machine.
BELOW_S = 5.0
MODEL_DIR = "first_model"


def applies(window: Any, data: Any, *, resume: bool) -> bool:
    """Whether the fit trains its one model here: a timed, fresh fit on in-memory data whose search
    window is under ``BELOW_S``."""
    return window is not None and not resume and isinstance(data, TrialData) and window.seconds < BELOW_S


def first_model(
    plan: Any,
    window: Any,
    *,
    out_dir: Path,
    searched: pd.DataFrame | None = None,
    until: float | None = None,
) -> tuple[pd.DataFrame, SearchRecord, float]:
    """Train the search's first initial point (a family's defaults) on all the CPUs, with early
    stopping, until the window's deadline passes (after one round at least), or ``until``
    (``time.monotonic()``) when given: after a search that left no model, the time the stages after
    the search were to use. Saved under ``out_dir/first_model``. ``plan`` is the engine's: data,
    settings, metric, sizes. ``searched``: the leaderboard of a search none of whose trials persisted a
    model (their rows are kept). Returns the leaderboard (saved), the ``search`` record, whose ``note``
    says why the model comes from here, and the seconds."""
    from app.search.tuner import board_scores
    from app.train.model import save_model

    data, settings, sspec = plan.data, plan.settings, plan.sspec
    point = initial_points(settings.families, plan.n_rows, plan.n_features, sspec.task)[0]
    family, params = split_config(point)
    started = time.monotonic()
    deadline = window.deadline if until is None else time.time() + (until - started)
    result = train_local(
        family,
        params,
        data,
        metric=sspec.metric,
        num_boost_round=settings.max_rounds,
        early_stopping_rounds=settings.early_stopping_rounds,
        threads=max(1, int(plan.cpus)),
        deadline=deadline,
    )
    path = out_dir / MODEL_DIR
    save_model(result, path)
    row = {
        "trial_id": uuid.uuid4().hex[:8],
        "family": family,
        "score": result.best_score,
        "cv_score": None,
        "rounds": result.num_rounds,
        "rows": len(data.y_train),
        "train_time_s": time.monotonic() - started,
        "status": leaderboard.DEADLINE if result.deadline_reached else "completed",
        "trainer": "in_process",
        "refit": False,
        "params": json.dumps(params, sort_keys=True),
        **board_scores(result, data),
        "checkpoint": str(path),
        "history": json.dumps(result.history[result.metric_name]),
    }
    rows = [row] if searched is None else [row, *searched.drop(columns="rank").to_dict("records")]
    board = leaderboard.frame(rows, mode=sspec.mode)
    leaderboard.save(board, out_dir)
    seconds = time.monotonic() - started
    record = search_record(board, settings, window=window, seconds=seconds, mode=sspec.mode)
    record["note"] = (
        f"no search: the start of the fit left {window.seconds:.1f} s of the budget for it, under the "
        f"{BELOW_S:g} s trials take to start; one model was trained in the driver"
        if searched is None
        else f"no trial persisted a model before the search ended; the driver trained {family}'s defaults "
        f"instead ({result.num_rounds} rounds in {seconds:.1f} s, "
        f"{'cut by the time budget' if result.deadline_reached else 'early stopping'})"
    )
    record["fallback"] = True
    return board, record, seconds
