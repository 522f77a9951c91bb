"""Cross-validation after the search, for small data: the best trials' configurations trained on K folds
of train + valid as Ray tasks, whose out-of-fold predictions choose the model and the ensemble weights.

On a few hundred rows the validation holdout is ~100 rows: many trials tie on it and its winner is
noise. Out-of-fold predictions score every train + valid row once, with a model that never saw it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from app.search.inprocess import TrialData, predict_encoded, train_local
from app.search.records import CVCandidate, CVRecord
from app.train.metrics import get_metric

AUTO_FOLDS = 5
AUTO_MAX_ROWS = 10_000
# Share of the time budget the search leaves to cross-validation (at most a third of the search's own
# window, app.search.budget), on top of the reserve for the end; cross-validation starts no candidate
# past its deadline.
SHARE = 0.1
# A fresh task worker starts and imports the boosting libraries before its first fold.
WORKER_START_S = 5.0


@dataclass
class Candidate:
    """A finished trial to cross-validate: its configuration and its search time (for the estimate)."""

    trial_id: str
    family: str
    params: dict[str, Any]
    train_time_s: float


@dataclass
class Scored:
    """A cross-validated candidate: out-of-fold predictions for every row, each fold's best iteration."""

    trial_id: str
    family: str
    oof: np.ndarray
    best_iterations: list[int]
    score: float
    seconds: float
    # Each fold's trained model (``keep_models``): the bag that bagging keeps as the chosen model.
    models: list[Any] = field(default_factory=list)

    @property
    def rounds(self) -> int:
        """Rounds for the refit on all rows: the folds' mean best round count."""
        return max(1, round(float(np.mean(self.best_iterations)) + 1))

    def record(self) -> CVCandidate:
        return {
            "trial_id": self.trial_id,
            "family": self.family,
            "cv_score": self.score,
            "rounds": self.rounds,
            "best_iterations": self.best_iterations,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class CVRun:
    """What cross-validation did: ``scored`` best first; empty, with ``reason``, when it was skipped."""

    folds: int
    y: np.ndarray
    w: np.ndarray | None
    scored: list[Scored] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    reason: str | None = None

    def record(self) -> CVRecord:
        """The ``cv`` entry of ``fit.json``."""
        return {
            "done": bool(self.scored),
            "reason": self.reason,
            "folds": self.folds,
            "rows": len(self.y),
            "candidates": [s.record() for s in self.scored],
            "skipped": self.skipped,
            "seconds": round(self.seconds, 3),
        }


def folds_for(settings, data: Any) -> tuple[int, str | None]:
    """Folds to cross-validate with (``settings.cv_folds``, or auto), or 0 and the reason for none."""
    if not isinstance(data, TrialData):
        return 0, "Ray Train trials: cross-validation needs the data in memory"
    rows = len(data.y_train) + len(data.y_valid)
    if settings.cv_folds is None:
        if not settings.refit:
            return 0, "auto: refit=False"
        if rows > AUTO_MAX_ROWS:
            return 0, f"auto: {rows:,} train + valid rows, over {AUTO_MAX_ROWS:,}"
        return AUTO_FOLDS, None
    if settings.cv_folds == 0:
        return 0, "cv_folds=0"
    return settings.cv_folds, None


def candidates(board: pd.DataFrame, *, top_k: int) -> list[Candidate]:
    """Up to ``top_k`` finished trials with distinct configurations: each family's best, then the best
    of the rest by validation score (the search piles into one family, and the ensemble gains most from
    members unlike each other)."""
    done = board[board["checkpoint"].notna()]
    seen, rows = set(), []
    for row in done.itertuples():
        key = (row.family, row.params)
        if key not in seen:
            seen.add(key)
            rows.append(row)
    family_best: dict[str, str] = {}
    for r in rows:
        family_best.setdefault(r.family, r.trial_id)
    family_best = set(family_best.values())
    chosen = [r for r in rows if r.trial_id in family_best][:top_k]
    chosen += [r for r in rows if r.trial_id not in family_best][: top_k - len(chosen)]
    order = {r.trial_id: i for i, r in enumerate(rows)}
    return [
        Candidate(
            trial_id=str(r.trial_id),
            family=r.family,
            params=json.loads(r.params),
            train_time_s=float(r.train_time_s) if pd.notna(r.train_time_s) else 0.0,
        )
        for r in sorted(chosen, key=lambda r: order[r.trial_id])
    ]


def fold_indices(
    y: np.ndarray, folds: int, *, classification: bool, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(train rows, held-out rows)`` per fold; stratified by class for classifiers, so that every fold
    holds every class (folds are capped at the smallest class's row count)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    if classification:
        folds = min(folds, int(np.unique(y, return_counts=True)[1].min()))
        if folds < 2:
            return []
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(len(y)), y))
    if len(y) < folds:
        return []
    return list(KFold(n_splits=folds, shuffle=True, random_state=seed).split(np.zeros(len(y))))


def fit_fold(
    data: TrialData,
    family: str,
    params: dict[str, Any],
    train_rows: np.ndarray,
    held_rows: np.ndarray,
    *,
    metric: str,
    max_rounds: int,
    early_stopping_rounds: int,
    keep_model: bool = False,
) -> tuple[np.ndarray, int, Any]:
    """One fold (a Ray task): train on ``train_rows`` of ``data``'s training rows, early-stopped on the
    held-out rows; returns the held-out predictions, the best iteration and, with ``keep_model``, the
    ``TrainResult`` (its model travels in memory through the object store, never a file).

    Early stopping on the held-out fold, not the trial's round count: that count was picked on one small
    holdout, and the refit needs a better one, the mean of the folds' picks. Picking each fold's round on
    the rows it then predicts flatters every candidate alike (so it hardly moves the ranking), by little
    (a model's score changes slowly near its best round), and patience bounds the cost.
    """
    w = data.w_train
    fold = TrialData(
        data.x_train[train_rows],
        data.y_train[train_rows],
        None if w is None else w[train_rows],
        data.x_train[held_rows],
        data.y_train[held_rows],
        None if w is None else w[held_rows],
        data.preprocessor,
    )
    result = train_local(
        family,
        params,
        fold,
        metric=metric,
        num_boost_round=max_rounds,
        early_stopping_rounds=early_stopping_rounds,
        threads=1,
    )
    held_out = predict_encoded(family, result.model, result.preprocessor, fold.x_valid)
    return held_out, int(result.best_iteration), result if keep_model else None


def cross_validate(
    cands: list[Candidate],
    data: TrialData,
    *,
    folds: int,
    task: str,
    metric: str,
    maximize: bool,
    max_rounds: int,
    early_stopping_rounds: int,
    trial_rows: int,
    seed: int = 0,
    deadline: float | None = None,
    slots: int = 2,
    keep_models: bool = False,
) -> CVRun:
    """Cross-validate ``cands`` (best first) on all of ``data``'s training rows, K folds each as Ray
    tasks of 1 CPU; the data goes to the object store once. ``trial_rows``: the rows a trial trained on
    (its time, scaled to a fold's rows, is the fold's estimate). ``keep_models``: each scored candidate
    keeps its folds' models (``Scored.models``), for bagging.

    A candidate starts only if its folds, by its trial's time, end before ``deadline``; folds still
    running at the deadline are cancelled and their candidates dropped. Without the first (best)
    candidate nothing is kept: ``reason`` says why.

    Example:
        >>> run = cross_validate(cands, data.with_valid_in_train(), folds=5, task="binary",
        ...     metric="logloss", maximize=False, max_rounds=300, early_stopping_rounds=30,
        ...     trial_rows=len(data.y_train))  # doctest: +SKIP
        >>> run.scored[0].score, run.scored[0].rounds  # doctest: +SKIP

    Long on purpose: the admission loop (start a candidate while its folds fit before the deadline)
    and the scoring of what finished share the in-flight state of ``_FoldTasks``.
    """
    started = time.monotonic()
    splits = fold_indices(data.y_train, folds, classification=task != "regression", seed=seed)
    run = CVRun(folds=len(splits), y=data.y_train, w=data.w_train)
    if not splits:
        run.reason = f"too few rows per class for {folds} folds"
        return run
    scale = len(splits[0][0]) / max(1, trial_rows)
    per_fold = [c.train_time_s * scale for c in cands]
    tasks = _FoldTasks(
        data,
        splits,
        metric=metric,
        max_rounds=max_rounds,
        early_stopping_rounds=early_stopping_rounds,
        keep_model=keep_models,
    )
    nxt = 0
    while True:
        # Admit the next candidate while the CPUs would otherwise idle on the current one's last folds.
        while nxt < len(cands) and len(tasks.pending) <= slots:
            backlog = sum(per_fold[i] for i, _ in tasks.pending.values()) + per_fold[nxt] * len(splits)
            need = backlog / slots + (WORKER_START_S if nxt == 0 else 0.0)
            if deadline is not None and time.monotonic() + need > deadline:
                why = f"time budget: ~{need:.1f} s needed, {max(0.0, deadline - time.monotonic()):.1f} s left"
                if nxt == 0:
                    run.reason = f"{why} for the best trial"
                    run.seconds = time.monotonic() - started
                    return run
                run.skipped.append({"trial_id": cands[nxt].trial_id, "reason": why})
            else:
                tasks.submit(nxt, cands[nxt])
            nxt += 1
        if not tasks.pending or not tasks.collect(deadline):
            break
    run.seconds = time.monotonic() - started
    if 0 in tasks.failed:
        run.reason = f"the best trial: {tasks.failed[0]}"
        return run
    run.skipped += [{"trial_id": cands[i].trial_id, "reason": why} for i, why in sorted(tasks.failed.items())]
    for i, got in tasks.parts.items():
        if i not in tasks.failed:
            oof = _assemble(splits, got)
            run.scored.append(
                Scored(
                    trial_id=cands[i].trial_id,
                    family=cands[i].family,
                    oof=oof,
                    best_iterations=[got[f][1] for f in range(len(splits))],
                    score=_score(metric, data, oof),
                    seconds=tasks.seconds(i),
                    models=[got[f][2] for f in range(len(splits))] if keep_models else [],
                )
            )
    run.scored.sort(key=lambda s: -s.score if maximize else s.score)
    return run


class _FoldTasks:
    """Fold tasks in flight: a candidate's folds submitted together, results gathered as they end."""

    def __init__(self, data: TrialData, splits: list[tuple[np.ndarray, np.ndarray]], **fit_kw: Any) -> None:
        import ray

        self._ray, self._splits, self._fit_kw = ray, splits, fit_kw
        self._fn = ray.remote(num_cpus=1, max_retries=0)(fit_fold)
        self._data = ray.put(data)
        self.pending: dict[Any, tuple[int, int]] = {}  # task -> (candidate, fold)
        self.parts: dict[int, dict[int, tuple[np.ndarray, int, Any]]] = {}
        self.failed: dict[int, str] = {}
        self._began: dict[int, float] = {}
        self._ended: dict[int, float] = {}

    def submit(self, i: int, c: Candidate) -> None:
        self.parts[i], self._began[i] = {}, time.monotonic()
        for f, (train_rows, held) in enumerate(self._splits):
            ref = self._fn.remote(self._data, c.family, c.params, train_rows, held, **self._fit_kw)
            self.pending[ref] = (i, f)

    def collect(self, deadline: float | None) -> bool:
        """Wait for the next fold; False once ``deadline`` passes (what still runs is cancelled)."""
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready, _ = self._ray.wait(list(self.pending), num_returns=1, timeout=timeout)
        if not ready:
            for ref, (i, _) in self.pending.items():
                self._ray.cancel(ref, force=True)
                self.failed.setdefault(i, "time budget: unfinished at the deadline")
            self.pending.clear()
            return False
        for ref in ready:
            i, f = self.pending.pop(ref)
            try:
                self.parts[i][f] = self._ray.get(ref)
                self._ended[i] = time.monotonic()
            except Exception as exc:  # noqa: BLE001 - a failed configuration is dropped, not the fit
                self.failed.setdefault(i, f"failed: {str(exc).strip().splitlines()[-1][:300]}")
        return True

    def seconds(self, i: int) -> float:
        """From a candidate's submission to its last fold's end."""
        return self._ended[i] - self._began[i]


def _assemble(
    splits: list[tuple[np.ndarray, np.ndarray]], got: dict[int, tuple[np.ndarray, int, Any]]
) -> np.ndarray:
    """Every row's prediction from the fold that held it out."""
    n = sum(len(held) for _, held in splits)
    first = got[0][0]
    oof = np.full((n, *first.shape[1:]), np.nan, dtype=np.float64)
    for f, (_, held) in enumerate(splits):
        oof[held] = got[f][0]
    return oof


def _score(metric: str, data: TrialData, oof: np.ndarray) -> float:
    return get_metric(metric).score(data.y_train, oof, data.w_train)
