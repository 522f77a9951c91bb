"""The search's progress line, from Ray Tune's callback hooks in the driver: trials done, the best score so
far and the time left, handed to ``progress(stage, text, final=False)`` (the CLI's ``Stages``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ray.tune import Callback

Progress = Callable[..., None]


class SearchProgress(Callback):
    """Calls ``progress("search", "3/30 trials, best logloss 0.41230, 52 s left", final=False)`` as trials
    report and end. Tune saves its callbacks with the experiment: the printer is not saved with it."""

    def __init__(
        self,
        progress: Progress,
        *,
        metric: str,
        mode: str,
        trials: int,
        deadline: float | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``trials``: the most the search runs; ``deadline``: when it ends (Unix time), if it does."""
        self.progress: Progress | None = progress
        self.metric, self.mode, self.trials, self.deadline = metric, mode, trials, deadline
        self.clock = clock
        self.best: float | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "progress": None, "clock": time.time}

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        score = result.get("score")
        if isinstance(score, int | float) and (
            self.best is None or (score < self.best if self.mode == "min" else score > self.best)
        ):
            self.best = float(score)
        self._show(trials)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._show(trials)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._show(trials)

    def line(self, trials: list) -> str:
        done = sum(t.status in ("TERMINATED", "ERROR") for t in trials)
        # A timed search without a trial count runs "unlimited" (sys.maxsize) trials.
        text = f"{done}/{self.trials} trials" if self.trials < 1_000_000 else f"{done} trials"
        if self.best is not None:
            text += f", best {self.metric} {self.best:.5f}"
        if self.deadline is not None:
            text += f", {max(self.deadline - self.clock(), 0):.0f} s left"
        return text

    def _show(self, trials: list) -> None:
        if self.progress is not None:
            self.progress("search", self.line(trials), final=False)


def search_line(board: Any, metric: str) -> str:
    """The search's last line, from its leaderboard (best first): trials run and the best one."""
    finished = board.dropna(subset=["checkpoint"])
    text = f"{len(board)} trials, {len(finished)} with a model"
    if len(finished):
        best = finished.iloc[0]
        text += f"; best {metric} {best['score']:.5f} ({best['family']})"
    return text
