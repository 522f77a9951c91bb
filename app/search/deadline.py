"""``DeadlineLimiter``: the search's searcher stops proposing trials at the fit's deadline, so that the
search ends as its running trials end (each at the deadline at the latest, with its model so far);
``RecordingASHA``: ASHA remembering the trials it stopped; ``HardStop``: trials still running at the
search's last moment are ended at once; ``ChoiceMeter``: the search's end from the trials' measured costs.

A module of its own because Tune pickles the searcher and scheduler (for resume) and these classes must
be importable by name, while ``app.search.tuner`` imports Ray Tune only when it builds a search.
"""

from __future__ import annotations

import time

from ray.tune import Callback
from ray.tune.schedulers import ASHAScheduler, TrialScheduler
from ray.tune.search import ConcurrencyLimiter, Searcher


class DeadlineLimiter(ConcurrencyLimiter):
    """Tune's ``ConcurrencyLimiter`` that proposes no trial past ``deadline`` (a Unix time): the search
    then ends as its running trials end, each at the deadline at the latest with its model so far,
    instead of Tune's time budget stopping them wherever they are.

    The first trial starts even past the deadline (it stops after its first round): a fit always gives a
    model. Every trial beyond the ``planned`` ones brings the deadline ``per_trial_s`` earlier: the time
    each trial costs after the search (tracking it) comes out of the search's window, not the budget's
    end. The deadline is not part of the searcher's saved state: a resumed search gets the new fit's.
    """

    def __init__(
        self,
        searcher,
        *,
        max_concurrent: int,
        deadline: float | None = None,
        planned: int = 0,
        per_trial_s: float = 0.0,
    ) -> None:
        super().__init__(searcher, max_concurrent=max_concurrent)
        self.deadline, self.planned, self.per_trial_s = deadline, planned, per_trial_s
        self.suggested = 0

    def follow(self, window) -> None:
        """End where ``window`` (``app.search.budget.SearchWindow``, or None: no deadline) says."""
        self.deadline = window.deadline if window else None
        self.planned = window.trials if window else 0
        self.per_trial_s = window.per_trial_s if window else 0.0

    def ends_at(self) -> float | None:
        """The deadline as the trials started so far leave it."""
        if self.deadline is None:
            return None
        return self.deadline - self.per_trial_s * max(0, self.suggested - self.planned)

    def suggest(self, trial_id: str):
        # The first trial starts whatever the time: a fit gives a model (its first round at least).
        ends = self.ends_at()
        if ends is not None and time.time() >= ends and self.suggested:
            return Searcher.FINISHED
        if hasattr(self.searcher, "until"):  # app.search.ladder.RowLadder plans its climbs to this end
            self.searcher.until = ends
        suggestion = super().suggest(trial_id)
        self.suggested += suggestion not in (None, Searcher.FINISHED)
        return suggestion

    def set_state(self, state: dict) -> None:
        kept = self.deadline, self.planned, self.per_trial_s
        super().set_state(state)
        self.deadline, self.planned, self.per_trial_s = kept


class RecordingASHA(ASHAScheduler):
    """ASHA that remembers which trials it stopped: the leaderboard tells them ("stopped") from trials
    that the time budget or Ctrl-C ended between reports ("cut")."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stopped: set[str] = set()

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        action = super().on_trial_result(tune_controller, trial, result)
        if action == TrialScheduler.STOP:
            self.stopped.add(trial.trial_id)
        return action


class HardStop(Callback):
    """Ends the trials still running at ``at`` (a Unix time) by killing their processes, and remembers
    them (``cut``).

    Every trial persists its best model as it trains (``app.search.candidates``), so a kill loses at
    most the rounds since its last persist; Tune's own stop at its time budget instead asks each trial
    to stop and waits for it, which a trial busy saving or scoring a large model makes the fit wait out.
    """

    def __init__(self, at: float | None) -> None:
        self.at = at
        self.cut: set[str] = set()

    @staticmethod
    def at_end_of(window) -> float | None:
        """When the trials of ``window`` (``app.search.budget.SearchWindow``; None: no limit) are ended:
        its backstop, as a Unix time."""
        return None if window is None else window.deadline + window.backstop_s - window.seconds

    def follow(self, window) -> None:
        """End where ``window`` says, with nothing cut yet: a resumed search comes back with the
        interrupted fit's callbacks (Tune pickles them with the Tuner), whose end is long past."""
        self.at, self.cut = self.at_end_of(window), set()

    def on_step_begin(self, iteration: int, trials: list, **info) -> None:
        if self.at is None or time.time() < self.at:
            return
        import ray

        for trial in trials:
            actor = trial.temporary_state.ray_actor
            if trial.status == "RUNNING" and actor is not None and trial.trial_id not in self.cut:
                self.cut.add(trial.trial_id)
                ray.kill(actor, no_restart=True)


class ChoiceMeter(Callback):
    """Measures, from the trials' own reports, what choosing the model after the search will cost, and
    brings the search's end earlier when that is more than the window kept for it.

    Choosing loads the best ``members`` persisted models (about as long as their trials took to persist
    them) and predicts the validation rows with each (timed by the trials at their final report). The
    window kept ``kept_s`` after its deadline for that and for the trials' last rounds (``slack_s``,
    until ``HardStop``); the first guesses come from ``app.search.budget``, this replaces them with
    what the trials measure. The trials' own deadline is fixed when they start, so the end only moves
    earlier: the searcher proposes no trial past it, and ``HardStop`` ends what still runs.
    """

    def __init__(
        self,
        limiter: DeadlineLimiter,
        hard_stop: HardStop | None,
        *,
        kept_s: float,
        slack_s: float,
        members: int,
    ) -> None:
        self.limiter, self.hard_stop = limiter, hard_stop
        self.kept_s, self.slack_s, self.members = kept_s, slack_s, max(1, members)
        self.follow()

    def follow(self) -> None:
        """Measure afresh from where the searcher's deadline and the hard stop are now (after their own
        ``follow`` on a resumed search)."""
        self.base = (self.limiter.deadline, self.hard_stop.at if self.hard_stop else None)
        self.costs: dict[str, float] = {}
        self.shift = 0.0

    def need_s(self) -> float:
        """Seconds the stages after the deadline need, as measured so far."""
        slowest = sorted(self.costs.values(), reverse=True)[: self.members]
        return self.slack_s + sum(slowest)

    def on_trial_result(self, iteration: int, trials: list, trial, result: dict, **info) -> None:
        persist, predict = result.get("persist_s") or 0.0, result.get("predict_s") or 0.0
        if not persist and not predict:
            return
        self.costs[trial.trial_id] = max(self.costs.get(trial.trial_id, 0.0), 2 * persist + predict)
        shift = self.need_s() - self.kept_s
        if shift <= self.shift or self.base[0] is None:
            return
        self.shift = shift
        self.limiter.deadline = self.base[0] - shift
        if self.hard_stop is not None and self.base[1] is not None:
            self.hard_stop.at = self.base[1] - shift
