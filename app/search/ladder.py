"""Rows as a resource of the search (``search.row_ladder``): successive halving over training rows, on
top of ASHA over rounds.

Every new configuration trains on the first rung's sample (``first_rung_rows``); a configuration climbs
to the next rung (``ROW_FACTOR`` times the rows) while it stays among the best ``1/ROW_FACTOR`` of the
configurations that finished on its rung, up to every training row. The validation rows are the same on
every rung, so scores compare across configurations; rankings of configurations hold across data sizes
(Kapoor & Perrone 2021), which is what lets many configurations be tried on samples and only the best
pay for all the rows.

The samples are prefixes of one order of the training rows (``stratified_order``), put in place once when
the data is encoded: a rung's sample is a view of the shared array, read by every trial of that rung,
never a copy or a pass over the data per trial.

A module of its own for the reason ``app.search.deadline`` is one: Tune pickles the searcher.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
import time
from typing import Any

import numpy as np
from ray.tune.search import Searcher

from app.search.spaces import ROWS

# Rows grow by this factor from rung to rung, and the best 1/ROW_FACTOR of a rung's finished
# configurations climb (successive halving's reduction factor).
ROW_FACTOR = 4
# The final climb: the leading configuration goes straight to the largest rung whose fit, at the
# leader's measured seconds per row, takes at most FINAL_SHARE of the search's window, and starts when
# the time left is CLIMB_MARGIN times that fit (trials beside it share the machine, and the estimate is
# linear in rows where boosting is a little worse). First guesses: the seconds per row are measured.
FINAL_SHARE = 0.4
CLIMB_MARGIN = 1.5
# Validation rows every trial of a ladder scores on each round, a stratified sample of the validation
# split: on millions of rows the split is many times a first rung's sample, and scoring it every round
# cost a trial on 10,000 rows ten times its boosting (bench/scale.py). The size is statistical, not the
# machine's: the standard error of AUC or logloss at this many rows is well under the gaps the search
# acts on.
VALID_ROWS = 100_000
# ``row_ladder=None`` turns the ladder on from this many training rows.
AUTO_ROWS = 500_000


def rungs(n_rows: int, first: int, factor: int = ROW_FACTOR) -> list[int]:
    """The rows of each rung: ``first``, ``first * factor``, ... while a rung is at most half of
    ``n_rows``, then ``n_rows`` (the last rung is every training row). One rung when ``n_rows`` is at most
    ``first``: no ladder."""
    ladder, rows = [], first
    while rows * 2 <= n_rows:
        ladder.append(rows)
        rows *= factor
    return [*ladder, n_rows]


def stratified_order(y: np.ndarray, *, classes: bool, seed: int) -> np.ndarray:
    """An order of the rows whose every prefix is a random sample of them, stratified by class for a
    classifier (each class spread evenly along the order), reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    if not classes:
        return order
    labels = y[order]
    # Position of each row within its class (in the random order), as a fraction of its class's count:
    # sorting by it interleaves the classes in proportion, so any prefix holds each class's share.
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    within = np.empty(len(labels), dtype=np.float64)
    for k in range(len(counts)):
        idx = np.flatnonzero(inverse == k)
        within[idx] = (np.arange(len(idx)) + rng.random(len(idx))) / len(idx)
    return order[np.argsort(within, kind="stable")]


def seconds_on(timed: list[tuple[int, float]], rows: int) -> float:
    """A fit's seconds on ``rows`` rows from the ``(rows, seconds)`` of fits of the same configuration on
    fewer: from the two largest, a fixed part (validation rows, the trial's start) and seconds per extra
    row; from one, its seconds per row (an overestimate: the fixed part counted as if it grew)."""
    timed = sorted(timed)
    top_rows, top_seconds = timed[-1]
    if len(timed) >= 2 and timed[-2][0] < top_rows:
        low_rows, low_seconds = timed[-2]
        per_row = (top_seconds - low_seconds) / (top_rows - low_rows)
        if per_row > 0:
            return top_seconds + per_row * (rows - top_rows)
    return top_seconds / max(top_rows, 1) * rows


class RowLadder(Searcher):
    """Wraps the searcher of new configurations (Optuna): every trial it proposes trains on the first
    rung's rows; a trial that finished among the best of its rung is proposed again (same configuration,
    the next rung's rows) before any new configuration. The wrapped searcher sees only its own trials,
    all on the first rung's rows, so its model of the space compares like with like.

    ``until`` (a Unix time, set by ``app.search.deadline.DeadlineLimiter``): the search's end. Climbing
    rung by rung needs four times the trials per rung, more than a budget buys on millions of rows: the
    leading configuration (the best finished one on the highest rung reached) then goes straight to the
    largest rung it can train on in time (``final_climb``), the search's last fit.
    """

    def __init__(self, searcher: Searcher, *, ladder: list[int], factor: int = ROW_FACTOR) -> None:
        self.searcher, self.ladder, self.factor = searcher, list(ladder), factor
        self.until: float | None = None
        self.started: float | None = None  # the first suggestion (Unix time): the window is until - started
        self.rung_of: dict[str, int] = {}
        self.config_of: dict[str, dict] = {}
        self.own: set[str] = set()  # trials proposed by the wrapped searcher
        self.scores: list[dict[str, float]] = [{} for _ in self.ladder]  # rung -> trial -> score
        self.finished: set[str] = set()
        self.seconds: dict[str, float] = {}
        self.promoted: dict[str, str] = {}  # trial -> the trial that took its configuration up a rung
        super().__init__(metric=searcher.metric, mode=searcher.mode)

    # Tune's searcher interface, passed on to the wrapped searcher for its own trials.
    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        ok = self.searcher.set_search_properties(metric, mode, config, **spec)
        self._metric, self._mode = self.searcher.metric, self.searcher.mode
        return ok

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return self.searcher.set_max_concurrency(max_concurrent)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self.own:
            self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self.own:
            self.searcher.on_trial_complete(trial_id, result=result, error=error)
        rung = self.rung_of.get(trial_id)
        score = (result or {}).get(self.metric)
        if rung is None or score is None or error:
            return
        self.scores[rung][trial_id] = float(score)
        self.seconds[trial_id] = float((result or {}).get("time_total_s") or 0.0)
        # Equal terms: a configuration climbs on a trial that ran to its end, not one ASHA stopped.
        if (result or {}).get("finished"):
            self.finished.add(trial_id)

    def suggest(self, trial_id: str) -> dict | str | None:
        self.started = self.started or time.time()
        climb = self.next_climb()
        if climb is not None:
            parent, rung = climb
            config = {**self.config_of[parent], ROWS: self.ladder[rung]}
            self.promoted[parent] = trial_id
            self.rung_of[trial_id], self.config_of[trial_id] = rung, config
            return config
        config = self.searcher.suggest(trial_id)
        if isinstance(config, dict):
            config = {**config, ROWS: self.ladder[0]}
            self.own.add(trial_id)
            self.rung_of[trial_id], self.config_of[trial_id] = 0, config
        return config

    # The ladder's decisions.
    def _ranked(self, rung: int) -> list[str]:
        """The trials that reported a final score on ``rung``, best first."""
        scores = self.scores[rung]
        return sorted(scores, key=scores.__getitem__, reverse=self.mode == "max")

    def next_climb(self) -> tuple[str, int] | None:
        """``(trial, rung)``: the configuration of ``trial`` goes to ``rung`` next; None: a new
        configuration. The final climb first when its time has come; else, from the top rung down, a
        finished trial in the best ``1/factor`` of its rung (successive halving, asynchronous)."""
        final = self.final_climb()
        if final is not None:
            return final
        for rung in range(len(self.ladder) - 2, -1, -1):
            ranked = self._ranked(rung)
            for trial in ranked[: len(ranked) // self.factor]:
                if trial in self.finished and trial not in self.promoted:
                    return trial, rung + 1
        return None

    def leader(self) -> tuple[str, int] | None:
        """The best finished trial on the highest rung with one, when it can still climb."""
        for rung in range(len(self.ladder) - 1, -1, -1):
            done = [t for t in self._ranked(rung) if t in self.finished]
            if done:
                top = done[0]
                if rung == len(self.ladder) - 1 or top in self.promoted:
                    return None  # at every row already, or climbing
                return top, rung
        return None

    def fit_seconds(self, trial: str, rung: int, to: int) -> float:
        """What training ``trial``'s configuration (finished on ``rung``) on rung ``to``'s rows will take,
        from its finished rungs (``seconds_on``)."""
        config = self._key(trial)
        timed = [
            (self.ladder[self.rung_of[t]], s)
            for t, s in self.seconds.items()
            if t in self.finished and self._key(t) == config
        ]
        return seconds_on(timed or [(self.ladder[rung], self.seconds.get(trial, 0.0))], self.ladder[to])

    def _key(self, trial: str) -> tuple:
        """The configuration of ``trial`` whatever its rows."""
        return tuple(sorted((k, str(v)) for k, v in self.config_of.get(trial, {}).items() if k != ROWS))

    def final_climb(self) -> tuple[str, int] | None:
        """The leader and the largest rung whose fit takes at most ``FINAL_SHARE`` of the window and ends
        before ``until``, once the time left is ``CLIMB_MARGIN`` times that fit; None before then,
        without a deadline, or when no rung above the leader's fits."""
        leader = self.leader()
        if leader is None or self.until is None or self.started is None:
            return None
        trial, rung = leader
        left, most = self.until - time.time(), FINAL_SHARE * (self.until - self.started)
        seconds = {k: self.fit_seconds(trial, rung, k) for k in range(rung + 1, len(self.ladder))}
        fits = [k for k, s in seconds.items() if s <= min(most, left)]
        if not fits or left > CLIMB_MARGIN * seconds[fits[-1]]:
            return None
        return trial, fits[-1]

    def counts(self) -> list[dict[str, int]]:
        """Per rung: its rows and how many trials trained on them (``fit.json``'s ``row_ladder``)."""
        per = [0] * len(self.ladder)
        for rung in self.rung_of.values():
            per[rung] += 1
        return [{"rows": rows, "trials": n} for rows, n in zip(self.ladder, per, strict=True)]

    # Saved with the search (resume), as JSON: the ladder's own state, and the wrapped searcher's file
    # as it wrote it (read back by the wrapped searcher's own restore).
    _SETS = ("own", "finished")

    def get_state(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k != "searcher"}
        plain = {k: sorted(v) if k in self._SETS else v for k, v in state.items()}
        return json.loads(json.dumps(plain, default=lambda v: v.item() if hasattr(v, "item") else str(v)))

    def set_state(self, state: dict[str, Any]) -> None:
        self.__dict__.update({k: set(v) if k in self._SETS else v for k, v in state.items()})

    def save(self, checkpoint_path: str) -> None:
        self.searcher.save(checkpoint_path)
        with open(checkpoint_path, "rb") as f:
            inner = base64.b64encode(f.read()).decode()
        with open(checkpoint_path, "w") as f:
            json.dump({"searcher": inner, "ladder": self.get_state()}, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path) as f:
            saved = json.load(f)
        fd, tmp = tempfile.mkstemp(suffix=".searcher")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(base64.b64decode(saved["searcher"]))
            self.searcher.restore(tmp)
        finally:
            os.unlink(tmp)
        self.set_state(saved["ladder"])


def on_ladder(data: Any, *, classes: bool, seed: int) -> Any:
    """``data`` (``TrialData``) for a ladder: its training rows in ``stratified_order`` (a rung's sample
    is a prefix), its validation rows one stratified sample of at most ``VALID_ROWS`` for every rung."""
    data = data.reordered(stratified_order(data.y_train, classes=classes, seed=seed))
    if len(data.y_valid) > VALID_ROWS:
        order = stratified_order(data.y_valid, classes=classes, seed=seed)
        data = data.valid_subset(np.sort(order[:VALID_ROWS]))
    return data


def ladder_for(settings: Any, n_rows: int) -> list[int] | None:
    """The rungs of a search of ``settings`` over ``n_rows`` training rows in memory, or None: no ladder
    (off, or too few rows for two rungs). ``row_ladder=None`` turns it on from ``AUTO_ROWS`` rows."""
    on = settings.row_ladder if settings.row_ladder is not None else n_rows >= AUTO_ROWS
    ladder = rungs(n_rows, settings.first_rung_rows)
    return ladder if on and len(ladder) > 1 else None
