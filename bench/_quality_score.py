"""Scoring of bench/quality.py: every system's test predictions scored the same way, here.

The primary metric per task (binary: ROC AUC, higher is better; multiclass: log loss and regression: RMSE,
lower) and the secondary ones; class columns aligned to one label order; one system's score relative to
another's.
"""

from __future__ import annotations

import numpy as np

# Primary metric per task: (name, higher is better).
PRIMARY = {"binary": ("auc", True), "multiclass": ("mlogloss", False), "regression": ("rmse", False)}


def score(task: str, y: np.ndarray, labels: list, pred: np.ndarray) -> dict[str, float]:
    """Primary and secondary test metrics; ``pred`` is (n, classes) in ``labels`` order or (n,)."""
    from sklearn.metrics import accuracy_score, f1_score, log_loss, mean_absolute_error, roc_auc_score

    if task == "regression":
        return {
            "rmse": float(np.sqrt(np.mean((y - pred) ** 2))),
            "mae": float(mean_absolute_error(y, pred)),
        }
    proba = np.clip(pred, 1e-15, 1.0)
    proba = proba / proba.sum(axis=1, keepdims=True)
    idx = {lab: j for j, lab in enumerate(labels)}
    y_idx = np.array([idx[v] for v in y])
    out = {"accuracy": float(accuracy_score(y_idx, proba.argmax(axis=1)))}
    loss = float(log_loss(y_idx, proba, labels=list(range(len(labels)))))
    if task == "binary":
        out |= {"auc": float(roc_auc_score(y_idx, proba[:, 1])), "logloss": loss}
    else:
        out |= {"mlogloss": loss, "macro_f1": float(f1_score(y_idx, proba.argmax(axis=1), average="macro"))}
    return out


def align(proba: np.ndarray, classes: list, labels: list) -> np.ndarray:
    """Columns of ``proba`` (in ``classes`` order) reordered to ``labels``; matched as strings."""
    pos = {str(c): j for j, c in enumerate(classes)}
    missing = [lab for lab in labels if str(lab) not in pos]
    if missing:
        raise ValueError(f"predictions lack classes {missing} (have {classes})")
    return proba[:, [pos[str(lab)] for lab in labels]]


def relative(task: str, project: float | None, other: float | None) -> float | None:
    """Project's score relative to another's, higher is better (1.0 = equal)."""
    if project is None or other is None:
        return None
    _, higher = PRIMARY[task]
    if higher:
        return project / other
    return other / project if project > 0 else float("inf")
