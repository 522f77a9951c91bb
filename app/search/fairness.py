"""Fair competition between model families (``search.family_fairness``).

ASHA compares trials at rungs of boosting rounds, and a round is not worth the same in every family: a
CatBoost round grows one symmetric tree, usually at a lower learning rate, so a CatBoost trial at 20 rounds
looks worse than a LightGBM trial at 20 rounds that it would beat at its end. Stopped there, it tells the
searcher that CatBoost is bad, and the searcher pours the budget into the family that survives the rungs.

``FamilyASHA`` judges a trial at a rung only against trials of its own family (one ASHA bracket per
family); ``FamilyShareSearch`` keeps a share of the trials for every family until that family is shown
worse on equal terms: its best finished trial (run to early stopping or the deadline, never one stopped at
a rung) does not beat the leading family's third best finished trial.

A module of its own for the reason ``app.search.deadline`` is one: Tune pickles the searcher and the
scheduler for resume, so these classes must be importable by name.
"""

from __future__ import annotations

import math
from typing import Any

from ray.tune.schedulers.async_hyperband import _Bracket
from ray.tune.search.optuna import OptunaSearch

from app.search.deadline import RecordingASHA

# A family is shown worse when its best finished trial does not beat the leader's SHOWN_AT-th best.
SHOWN_AT = 3


class BracketASHA(RecordingASHA):
    """ASHA with one bracket per value of ``keys`` in the trial's config: ``("family",)`` judges a trial
    only against its own family (``FamilyASHA``); with ``"rows"`` (``app.search.ladder``), only against
    trials on as many training rows, which a trial on a larger sample would otherwise beat at every rung."""

    def __init__(
        self,
        *,
        grace_period: int,
        max_t: int,
        reduction_factor: float,
        keys: tuple[str, ...] = ("family",),
        stop_last_trials: bool = True,
        **kw,
    ) -> None:
        super().__init__(
            grace_period=grace_period,
            max_t=max_t,
            reduction_factor=reduction_factor,
            stop_last_trials=stop_last_trials,
            **kw,
        )
        self._bracket_args = (grace_period, max_t, reduction_factor)
        self.keys = tuple(keys)
        self.brackets: dict[tuple[str, ...], _Bracket] = {}

    def on_trial_add(self, tune_controller, trial) -> None:
        super().on_trial_add(tune_controller, trial)  # checks metric and mode
        key = tuple(str(trial.config.get(k)) for k in self.keys)
        if key not in self.brackets:
            grace, max_t, factor = self._bracket_args
            last = self._stop_last_trials
            self.brackets[key] = _Bracket(grace, max_t, factor, 0, stop_last_trials=last)
        self._trial_info[trial.trial_id] = self.brackets[key]


class FamilyASHA(BracketASHA):
    """ASHA with one bracket per model family (``trial.config["family"]``): the rungs' cutoffs are each
    family's own, so a family is never stopped for learning less per round than another."""


class FamilyShareSearch(OptunaSearch):
    """Optuna's search that keeps, once the initial points have started, at least half an equal share of
    the trials for every family not shown worse (see the module): when one falls behind, its next trial is
    enqueued with the family fixed, and TPE samples the rest of its parameters.

    The counts are the searcher's own, not part of Optuna's saved state: a resumed search counts afresh.
    """

    def __init__(self, *args: Any, families: list[str], initial: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.families = list(families)
        self.initial = initial
        self.started = dict.fromkeys(self.families, 0)
        self.finished: dict[str, list[float]] = {f: [] for f in self.families}
        self.family_of: dict[str, str] = {}
        self.waiting: str | None = None  # a family enqueued and not proposed yet
        self.forced = 0

    def _better(self, values: list[float]) -> list[float]:
        """``values`` best first, as larger-is-better numbers."""
        sign = 1.0 if self._mode == "max" else -1.0
        return sorted((sign * v for v in values), reverse=True)

    def shown_worse(self, family: str) -> bool:
        ranked = {f: self._better(v) for f, v in self.finished.items()}
        leader = max(ranked, key=lambda f: ranked[f][0] if ranked[f] else -math.inf)
        mine, theirs = ranked[family], ranked[leader]
        if family == leader or len(mine) < SHOWN_AT or len(theirs) < SHOWN_AT:
            return False
        return mine[0] < theirs[SHOWN_AT - 1]

    def owed(self) -> str | None:
        """The family furthest behind its share, when one is (None while the initial points start)."""
        total = sum(self.started.values())
        if len(self.families) < 2 or total < self.initial:
            return None
        floor = total / (2 * len(self.families))
        behind = [f for f in self.families if self.started[f] < floor and not self.shown_worse(f)]
        return min(behind, key=lambda f: self.started[f]) if behind else None

    def suggest(self, trial_id: str) -> dict | None:
        if self.waiting is None and self._ot_study is not None and (family := self.owed()):
            self._ot_study.enqueue_trial({"family": family})
            self.waiting = family
            self.forced += 1
        config = super().suggest(trial_id)
        family = config.get("family") if isinstance(config, dict) else None
        if family in self.started:
            self.started[family] += 1
            self.family_of[trial_id] = family
            if family == self.waiting:
                self.waiting = None
        return config

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        super().on_trial_complete(trial_id, result=result, error=error)
        family = self.family_of.get(trial_id)
        # Equal terms: a trial that ran to its end (its final report), never one stopped at a rung.
        if family and result and result.get("finished") and result.get(self._metric) is not None:
            self.finished[family].append(float(result[self._metric]))
