"""The run report's curves in plain numpy: ROC, precision-recall, confusion (the metrics themselves are
``app.train.metrics``).

``y`` holds class codes (``0..k-1``) for classification and values for regression; ``scores`` are the
``Predictor.predict_scores`` output: probabilities ``(n, k)`` or values ``(n,)``.
"""

from __future__ import annotations

import numpy as np


def roc_curve(positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """False and true positive rates at every threshold, and the area under the curve."""
    tps, fps, _ = _cumulative(positive, score)
    tpr = np.concatenate([[0.0], tps / max(tps[-1], 1)])
    fpr = np.concatenate([[0.0], fps / max(fps[-1], 1)])
    return fpr, tpr, float(np.trapezoid(tpr, fpr))


def pr_curve(positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Recall and precision at every threshold, and the average precision."""
    tps, fps, _ = _cumulative(positive, score)
    precision = tps / np.maximum(tps + fps, 1)
    recall = tps / max(tps[-1], 1)
    ap = float(np.sum(np.diff(np.concatenate([[0.0], recall])) * precision))
    return np.concatenate([[0.0], recall]), np.concatenate([[1.0], precision]), ap


def confusion(codes: np.ndarray, predicted: np.ndarray, k: int) -> np.ndarray:
    """``(k, k)`` counts, rows the true class, columns the predicted one."""
    out = np.zeros((k, k), dtype=np.int64)
    np.add.at(out, (np.asarray(codes, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
    return out


def _cumulative(positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.argsort(-np.asarray(score, dtype=np.float64), kind="mergesort")
    pos = np.asarray(positive, dtype=bool)[order]
    s = np.asarray(score)[order]
    last_of_tie = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # one point per distinct threshold
    tps = np.cumsum(pos)[last_of_tie].astype(np.float64)
    fps = (last_of_tie + 1 - tps).astype(np.float64)
    return tps, fps, s[last_of_tie]
