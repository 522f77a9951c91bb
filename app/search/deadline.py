"""``DeadlineLimiter``: the search's searcher stops proposing trials at the fit's deadline, so that the
search ends as its running trials end (each at the deadline at the latest, with its model so far).

A module of its own because Tune pickles the searcher (for resume) and this class must be importable
by name, while ``app.search.tuner`` imports Ray Tune only when it builds a search.
"""

from __future__ import annotations

import time

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
        suggestion = super().suggest(trial_id)
        self.suggested += suggestion not in (None, Searcher.FINISHED)
        return suggestion

    def set_state(self, state: dict) -> None:
        kept = self.deadline, self.planned, self.per_trial_s
        super().set_state(state)
        self.deadline, self.planned, self.per_trial_s = kept
