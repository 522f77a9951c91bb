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
    model. The deadline is not part of the searcher's saved state: a resumed search gets the new fit's.
    """

    def __init__(self, searcher, *, max_concurrent: int, deadline: float | None) -> None:
        super().__init__(searcher, max_concurrent=max_concurrent)
        self.deadline = deadline
        self.suggested = 0

    def suggest(self, trial_id: str):
        # The first trial starts whatever the time: a fit gives a model (its first round at least).
        if self.deadline is not None and time.time() >= self.deadline and self.suggested:
            return Searcher.FINISHED
        suggestion = super().suggest(trial_id)
        self.suggested += suggestion not in (None, Searcher.FINISHED)
        return suggestion

    def set_state(self, state: dict) -> None:
        deadline = self.deadline
        super().set_state(state)
        self.deadline = deadline
