"""Model performance with ground truth: labels joined to served predictions, a rolling score over the
most recent ones, compared with the baseline recorded at training (the guide's ``PerformanceMonitor``)."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np

from app.train.metrics import get_metric

# The rolling score by task, first choice first: the first one training recorded gives the baseline.
TASK_METRICS = {
    "binary": ("auc", "accuracy", "logloss"),
    "multiclass": ("accuracy", "mlogloss"),
    "regression": ("rmse", "mae"),
}


def choose_metric(task: str, recorded: dict) -> tuple[str, float | None]:
    """The task's rolling metric and its training baseline from ``recorded`` (validation metrics)."""
    for name in TASK_METRICS[task]:
        if isinstance(recorded.get(name), int | float):
            return name, float(recorded[name])
    return TASK_METRICS[task][0], None


class PerformanceMonitor:
    """A rolling score of the last ``window_size`` labelled predictions against a baseline.

    ``add(labels, scores)`` takes class codes (classification) or values (regression) and the served
    scores: class probabilities ``(n, k)`` or values ``(n,)``.

    Example (guide):
        >>> monitor = PerformanceMonitor()
        >>> monitor.set_baseline(0.92)
        >>> monitor.add([1, 0], [[0.2, 0.8], [0.9, 0.1]])
        >>> monitor.check_degradation()
        (False, 1.0)
    """

    def __init__(
        self,
        *,
        metric: str = "accuracy",
        window_size: int = 2_000,
        tolerance: float = 0.05,
        min_labels: int = 1,
    ) -> None:
        self.metric = get_metric(metric)
        self.tolerance, self.min_labels = tolerance, min_labels
        self.baseline: float | None = None
        self.labels: deque = deque(maxlen=window_size)
        self.scores: deque = deque(maxlen=window_size)

    def set_baseline(self, score: float) -> None:
        self.baseline = float(score)

    def add(self, labels: Sequence, scores: Sequence) -> None:
        self.labels.extend(labels)
        self.scores.extend(np.asarray(scores, dtype=np.float64).tolist())

    def current_score(self) -> float | None:
        if not self.labels:
            return None
        y = np.asarray(self.labels)
        pred = np.asarray(self.scores, dtype=np.float64)
        return self.metric.score(y, pred)

    def check_degradation(self) -> tuple[bool, float | None]:
        """(degraded, current score): degraded when the score is worse than the baseline by more than
        ``tolerance`` (relative), with at least ``min_labels`` labels."""
        score = self.current_score()
        if score is None or self.baseline is None or len(self.labels) < self.min_labels:
            return False, score
        allowed = abs(self.baseline) * self.tolerance
        return self.metric.gain(score, self.baseline) < -allowed, score
