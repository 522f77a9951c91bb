"""Greedy ensemble selection (Caruana et al., 2004) over the best trials' validation predictions,
scored with ``app.train.metrics``.

The chosen weights are saved as an ensemble model directory by ``app.train.ensemble.save_ensemble``
and loaded like any model by ``app.train.load_model``.
"""

from __future__ import annotations

import numpy as np

from app.train.metrics import get_metric


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

    Starts from the best single model, so the result is never worse than it on this data. ``maximize``
    is the search's direction (``RayTuneSettings.mode`` may set it).
    """
    scoring = get_metric(metric)
    singles = [scoring.score(y, p, weight) for p in preds]
    best_i = int(np.argmax(singles) if maximize else np.argmin(singles))
    counts = np.zeros(len(preds))
    counts[best_i] = 1
    total = preds[best_i].astype(np.float64).copy()
    best_score = singles[best_i]
    for _ in range(rounds - 1):
        n = counts.sum()
        trial = [scoring.score(y, (total + p) / (n + 1), weight) for p in preds]
        i = int(np.argmax(trial) if maximize else np.argmin(trial))
        improves = trial[i] > best_score if maximize else trial[i] < best_score
        if not improves:
            break
        counts[i] += 1
        total += preds[i]
        best_score = trial[i]
    return counts / counts.sum(), float(best_score)
