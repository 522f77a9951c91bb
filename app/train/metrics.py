"""Validation metrics, defined once: name, direction, what predictions each needs and how it scores
(weighted) rows. Training, the search, the ensemble, cross-validation, tracking and the registry's
promotion rule all ask ``get_metric(name)``, so they agree on which model is better.

``y`` holds class codes (``0..k-1``) for classification and values for regression; predictions are
``Predictor.predict_scores`` output: probabilities ``(n, k)`` (``needs="proba"``) or values ``(n,)``
(``needs="value"``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from app.learners import learner

Scorer = Callable[[np.ndarray, np.ndarray, np.ndarray], float]

_EPS = 1e-15
# Names outside the table (a library's own metric passed through): the direction is read from the name.
_MIN_HINTS = ("loss", "error", "rmse", "mae", "mse", "mape", "deviance", "nloglik")
_MAX_HINTS = ("auc", "accuracy", "ndcg", "map", "precision", "recall", "f1", "r2", "score")


@dataclass(frozen=True)
class Metric:
    """One validation metric.

    Example:
        >>> m = get_metric("logloss")
        >>> (m.mode, m.needs, m.better(0.2, 0.3))
        ('min', 'proba', True)
    """

    name: str
    maximize: bool
    needs: Literal["proba", "value"] = "proba"
    scorer: Scorer | None = field(default=None, compare=False, repr=False)

    @property
    def mode(self) -> str:
        """``"max"`` or ``"min"``, as Ray Tune and the registry spell the direction."""
        return "max" if self.maximize else "min"

    def score(self, y: np.ndarray, pred: np.ndarray, weight: np.ndarray | None = None) -> float:
        """The metric over rows ``y`` with predictions ``pred``, each row weighted by ``weight``."""
        if self.scorer is None:
            raise ValueError(f"metric {self.name!r} is a library's own: it cannot be computed here")
        y, pred = np.asarray(y), np.asarray(pred, dtype=np.float64)
        w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=np.float64)
        return float(self.scorer(y, pred, w))

    def gain(self, candidate: float, reference: float) -> float:
        """How much better ``candidate`` is than ``reference`` (negative when worse)."""
        return candidate - reference if self.maximize else reference - candidate

    def better(self, candidate: float, reference: float | None) -> bool:
        """True when ``candidate`` beats ``reference`` (None: nothing to beat yet)."""
        return reference is None or self.gain(candidate, reference) > 0


def _logloss(y, p, w) -> float:
    picked = np.clip(p[np.arange(len(y)), y.astype(np.int64)], _EPS, 1.0)
    return -(w * np.log(picked)).sum() / w.sum()


def _accuracy(y, p, w) -> float:
    return (w * (p.argmax(axis=1) == y.astype(np.int64))).sum() / w.sum()


def _error(y, p, w) -> float:
    return 1.0 - _accuracy(y, p, w)


def _f1_macro(y, p, w) -> float:
    """Multiclass: the F1 score of each class present (in labels or predictions), weighted rows, averaged
    over the classes with equal weight."""
    codes, guess = y.astype(np.int64), p.argmax(axis=1)
    scores = []
    for k in np.union1d(codes, guess):
        tp = (w * ((guess == k) & (codes == k))).sum()
        denom = (w * (guess == k)).sum() + (w * (codes == k)).sum()
        scores.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(scores))


def _auc(y, p, w) -> float:
    """Binary: area under the ROC curve of the positive class; multiclass: one-vs-rest, macro-averaged
    over the classes present. Unweighted (ranks)."""
    if p.ndim == 1 or p.shape[1] <= 2:
        return _binary_auc(y == 1, p if p.ndim == 1 else p[:, 1])
    codes = y.astype(np.int64)
    return float(np.mean([_binary_auc(codes == k, p[:, k]) for k in range(p.shape[1]) if (codes == k).any()]))


def _binary_auc(positive: np.ndarray, s: np.ndarray) -> float:
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    _, first, counts = np.unique(s[order], return_index=True, return_counts=True)
    ranks[order] = np.repeat(first + (counts - 1) / 2.0 + 1, counts)  # ties share their mean rank
    pos = np.asarray(positive, dtype=bool)
    n_pos, n_neg = pos.sum(), (~pos).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _rmse(y, p, w) -> float:
    return np.sqrt((w * (p.reshape(-1) - y.astype(np.float64)) ** 2).sum() / w.sum())


def _mae(y, p, w) -> float:
    return (w * np.abs(p.reshape(-1) - y.astype(np.float64))).sum() / w.sum()


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("logloss", maximize=False, scorer=_logloss),
        Metric("mlogloss", maximize=False, scorer=_logloss),
        Metric("auc", maximize=True, scorer=_auc),
        Metric("accuracy", maximize=True, scorer=_accuracy),
        Metric("error", maximize=False, scorer=_error),
        Metric("f1_macro", maximize=True, scorer=_f1_macro),
        Metric("rmse", maximize=False, needs="value", scorer=_rmse),
        Metric("mae", maximize=False, needs="value", scorer=_mae),
    )
}
DEFAULT_METRICS: dict[str, list[str]] = {
    "binary": ["logloss", "auc"],
    "multiclass": ["mlogloss", "accuracy"],
    "regression": ["rmse"],
}


# Reported on the leaderboard beside the search metric (the model is still chosen on the search metric).
BOARD_METRICS: dict[str, list[str]] = {"multiclass": ["accuracy", "f1_macro"]}


def get_metric(name: str) -> Metric:
    """The metric called ``name``; another name (a library's own metric) gets its direction from the
    name and cannot be scored here."""
    if name in METRICS:
        return METRICS[name]
    lowered = name.lower()
    maximize = not any(h in lowered for h in _MIN_HINTS) and any(h in lowered for h in _MAX_HINTS)
    return Metric(name, maximize=maximize)


def default_metric(task: str) -> Metric:
    """The metric a task is searched and early-stopped on when none is named."""
    return METRICS[DEFAULT_METRICS[task][0]]


@dataclass(frozen=True)
class NativeMetric:
    """A ``Metric`` as one library reports it: the library's name, and whether it reports ``1 - value``."""

    metric: Metric
    native: str
    complement: bool = False  # the library reports an error rate; the metric is 1 - rate

    @property
    def name(self) -> str:
        return self.metric.name

    @property
    def maximize(self) -> bool:
        return self.metric.maximize

    def value(self, native_value: float) -> float:
        return 1.0 - float(native_value) if self.complement else float(native_value)


def resolve_metrics(family: str, task: str, names: list[str] | None) -> list[NativeMetric]:
    """The validation metrics of a run: the task's defaults, or ``names`` mapped to the family's names."""
    mod = learner(family)
    out = []
    for name in names or DEFAULT_METRICS[task]:
        native, complement = mod.native_metric(name, task)
        out.append(NativeMetric(metric=get_metric(name), native=native, complement=complement))
    return out
