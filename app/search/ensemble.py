"""Greedy ensemble selection (Caruana et al., 2004) over the best trials' validation predictions.

The chosen weights are saved as an ensemble model directory by ``app.train.ensemble.save_ensemble``
and loaded like any model by ``app.train.load_model``.
"""

from __future__ import annotations

import numpy as np


def score(metric: str, y: np.ndarray, pred: np.ndarray, weight: np.ndarray | None = None) -> float:
    """Canonical validation metrics on numpy: probabilities ``(n, k)`` or values ``(n,)``."""
    w = np.ones(len(y)) if weight is None else weight
    eps = 1e-15
    if metric in ("logloss", "mlogloss"):
        p = np.clip(pred[np.arange(len(y)), y.astype(int)], eps, 1.0)
        return float(-(w * np.log(p)).sum() / w.sum())
    if metric == "accuracy":
        return float((w * (pred.argmax(axis=1) == y)).sum() / w.sum())
    if metric == "error":
        return 1.0 - score("accuracy", y, pred, weight)
    if metric == "auc":
        return _auc(y, pred[:, 1] if pred.ndim == 2 else pred)
    if metric == "rmse":
        return float(np.sqrt((w * (pred - y) ** 2).sum() / w.sum()))
    if metric == "mae":
        return float((w * np.abs(pred - y)).sum() / w.sum())
    raise ValueError(f"ensemble selection cannot compute metric {metric!r}")


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1
    ranks[order] = np.repeat(avg, counts)
    pos = y == 1
    n_pos, n_neg = pos.sum(), (~pos).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def select(
    preds: list[np.ndarray],
    y: np.ndarray,
    *,
    metric: str,
    maximize: bool,
    rounds: int = 25,
    weight: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Weights over ``preds`` by greedy forward selection with replacement, and the ensemble's score.

    Starts from the best single model, so the result is never worse than it on this data.
    """
    singles = [score(metric, y, p, weight) for p in preds]
    best_i = int(np.argmax(singles) if maximize else np.argmin(singles))
    counts = np.zeros(len(preds))
    counts[best_i] = 1
    total = preds[best_i].astype(np.float64).copy()
    best_score = singles[best_i]
    for _ in range(rounds - 1):
        n = counts.sum()
        trial = [score(metric, y, (total + p) / (n + 1), weight) for p in preds]
        i = int(np.argmax(trial) if maximize else np.argmin(trial))
        improves = trial[i] > best_score if maximize else trial[i] < best_score
        if not improves:
            break
        counts[i] += 1
        total += preds[i]
        best_score = trial[i]
    return counts / counts.sum(), float(best_score)
