"""In-process training for search trials: the data sits once in Ray's object store as numpy arrays and
each trial boosts on it directly (the learner's ``fit_local``), its per-round callback feeding Tune.

A Ray Train run pays a fixed start-up (a controller and workers in fresh processes) that is longer than a
short trial, so trials over data that fits in memory train in the trial's own process. Larger data goes
through Ray Train.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa

from app.data.encode import LABEL, Preprocessor
from app.learners import learner
from app.train.ingest import stack_columns
from app.train.metrics import NativeMetric, resolve_metrics
from app.train.result import TrainResult


@dataclass
class Round:
    """What a round hook sees: the rounds done, the validation metrics, the best round so far (0-based)
    and ``snapshot()``, the model as of that best round; None where the library keeps the model to itself
    while it trains (CatBoost): the hook returns ``PAUSE`` to have training stop, hand the model over
    and go on, and is called again for the same round with a snapshot."""

    done: int
    values: dict[str, float]
    best_iteration: int
    snapshot: Callable[[], TrainResult] | None


PAUSE = "pause"
# on_round(Round) -> True to stop the trial, PAUSE for the model (see Round), False to go on.
RoundFn = Callable[[Round], bool | str]


# Raw (not encoded) validation rows kept for the run report and the model's input example.
RAW_VALID_ROWS = 2000


@dataclass
class ValidRows:
    """Encoded validation rows: features, labels, weights; ``raw`` is a head of the rows as read."""

    x: np.ndarray
    y: np.ndarray
    w: np.ndarray | None
    raw: pa.Table | None = None


@dataclass
class TrialData:
    """Encoded training and validation data, shared read-only by every trial."""

    x_train: np.ndarray
    y_train: np.ndarray
    w_train: np.ndarray | None
    x_valid: np.ndarray
    y_valid: np.ndarray
    w_valid: np.ndarray | None
    preprocessor: dict
    raw_valid: pa.Table | None = None

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.x_train, self.y_train, self.x_valid, self.y_valid))

    @property
    def valid(self) -> ValidRows:
        return ValidRows(self.x_valid, self.y_valid, self.w_valid, self.raw_valid)

    @classmethod
    def from_datasets(cls, train, valid, pre: Preprocessor) -> TrialData:
        """Encode two Ray Datasets batch by batch into contiguous float32 arrays, keeping the first
        ``RAW_VALID_ROWS`` validation rows as read (reading them again later costs a Ray Data run)."""
        x_t, y_t, w_t, _ = _encode(train, pre)
        x_v, y_v, w_v, raw = _encode(valid, pre, keep_raw=RAW_VALID_ROWS)
        if len(y_t) == 0 or len(y_v) == 0:
            raise ValueError(f"empty split: {len(y_t)} training and {len(y_v)} validation rows")
        return cls(x_t, y_t, w_t, x_v, y_v, w_v, pre.to_dict(), raw)

    @classmethod
    def sample_of(
        cls, train, valid: ValidRows, pre: Preprocessor, *, fraction: float, seed: int
    ) -> TrialData:
        """A random ``fraction`` of the training Ray Dataset ``train``, encoded, with the encoded
        ``valid`` rows: the in-memory search of data over the memory limit (``app.search.ladder``).
        Ray Data draws it (reproducible from ``seed`` for the same files and blocks)."""
        x, y, w, _ = _encode(train.random_sample(fraction, seed=seed) if fraction < 1 else train, pre)
        if len(y) == 0:
            raise ValueError(f"empty sample: {fraction:.2%} of the training split gave no row")
        return cls(x, y, w, valid.x, valid.y, valid.w, pre.to_dict(), valid.raw)

    def head(self, rows: int) -> TrialData:
        """The first ``rows`` training rows, as views of these arrays (no copy), with the same validation
        rows: a row ladder's sample (``app.search.ladder``) once the rows are in ``reordered`` order."""
        if rows >= len(self.y_train):
            return self
        w = None if self.w_train is None else self.w_train[:rows]
        return replace(self, x_train=self.x_train[:rows], y_train=self.y_train[:rows], w_train=w)

    def valid_subset(self, rows: np.ndarray) -> TrialData:
        """These data with only the validation rows ``rows`` (indices); ``raw_valid`` stays as it is (the
        report and the prediction reference read it on its own)."""
        w = None if self.w_valid is None else self.w_valid[rows]
        return replace(self, x_valid=self.x_valid[rows], y_valid=self.y_valid[rows], w_valid=w)

    def reordered(self, order: np.ndarray) -> TrialData:
        """The training rows in ``order`` (``app.search.ladder.stratified_order``: every prefix a sample)."""
        w = None if self.w_train is None else self.w_train[order]
        return replace(self, x_train=self.x_train[order], y_train=self.y_train[order], w_train=w)

    def with_valid_in_train(self) -> TrialData:
        """Training rows followed by the validation rows (for a refit); validation stays as it is."""
        weights = None
        if self.w_train is not None and self.w_valid is not None:
            weights = np.concatenate([self.w_train, self.w_valid])
        return TrialData(
            np.concatenate([self.x_train, self.x_valid]),
            np.concatenate([self.y_train, self.y_valid]),
            weights,
            self.x_valid,
            self.y_valid,
            self.w_valid,
            self.preprocessor,
        )


def encode_rows(ds, pre: Preprocessor, *, max_rows: int | None = None) -> ValidRows:
    """The first ``max_rows`` rows of ``ds``, encoded (the validation rows the ensemble is chosen on)."""
    x, y, w, raw = _encode(ds.limit(max_rows) if max_rows is not None else ds, pre, keep_raw=RAW_VALID_ROWS)
    if len(y) == 0:
        raise ValueError("empty validation split")
    return ValidRows(x, y, w, raw)


def _encode(
    ds, pre: Preprocessor, *, keep_raw: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, pa.Table | None]:
    """Features, labels and weights of ``ds``, and its first ``keep_raw`` rows as read (or None).

    Rows come in the files' order: Ray Data otherwise hands blocks over as they finish, and XGBoost's
    sketch, CatBoost and bagging all depend on row order, so the same data gave other models run to run.
    """
    parts, raw, kept = [], [], 0
    options = ds.context.execution_options  # shared by the datasets of this read: set for this pass only
    before, options.preserve_order = options.preserve_order, True
    try:
        for t in ds.iter_batches(batch_format="pyarrow", batch_size=None):
            parts.append(pre.transform(t))
            if kept < keep_raw and t.num_rows:
                raw.append(t.slice(0, keep_raw - kept))
                kept += raw[-1].num_rows
    finally:
        options.preserve_order = before
    head = pa.concat_tables(raw, promote_options="permissive") if raw else None
    x, y, w = stack_columns([p for p in parts if len(p[LABEL])], pre)
    return x, y, w, head


class _Stopper:
    """Early stopping on the primary metric, the caller's stop signal and a wall-clock deadline (a Unix
    time: trials compare it across processes), which ends training after at least one round."""

    def __init__(
        self,
        metrics: list[NativeMetric],
        patience: int | None,
        on_round: RoundFn | None,
        deadline: float | None = None,
    ) -> None:
        self.metrics, self.patience, self.on_round = metrics, patience, on_round
        self.deadline, self.deadline_reached, self.last_round_end = deadline, False, 0.0
        self.history: dict[str, list[float]] = {m.name: [] for m in metrics}
        self.best_iteration, self.best = -1, None
        self.build: Callable[[Any], TrainResult] | None = None  # the model so far -> its result
        self.model: Any = None
        self.paused: Round | None = None

    def snapshot(self) -> TrainResult:
        """The model being trained as of its best round so far, as a ``TrainResult``."""
        assert self.build is not None and self.model is not None
        return self.build(self.model)

    def after_round(self, done: int, native: dict[str, float], model: Any = None) -> bool:
        values = {m.name: m.value(native[m.native]) for m in self.metrics if m.native in native}
        for name, v in values.items():
            self.history[name].append(v)
        primary = self.metrics[0]
        score = values[primary.name]
        better = self.best is None or (score > self.best if primary.maximize else score < self.best)
        if better:
            self.best, self.best_iteration = score, done - 1
        self.model = model
        snapshot = self.snapshot if model is not None and self.build is not None else None
        asked = self.on_round(Round(done, values, self.best_iteration, snapshot)) if self.on_round else False
        stop = asked is True
        if self.patience is not None and done - 1 - self.best_iteration >= self.patience:
            stop = True
        if not stop and self.deadline is not None:
            # Past the deadline, or where one more round (as long as the last) would end past it.
            now = time.time()
            if now + (now - self.last_round_end if self.last_round_end else 0.0) >= self.deadline:
                stop = self.deadline_reached = True
            self.last_round_end = now
        if asked == PAUSE and not stop:
            self.paused = Round(done, values, self.best_iteration, None)
            return True
        return bool(stop)

    def resume(self, model: Any) -> bool:
        """After a pause (see ``Round``): the hook gets the round again with ``model``; True to go on
        boosting (the hook did not stop the trial)."""
        paused, self.paused = self.paused, None
        if paused is None or self.on_round is None:
            return False
        self.model = model
        return self.on_round(Round(paused.done, paused.values, paused.best_iteration, self.snapshot)) is False


def predict_encoded(family: str, model: Any, pre: Preprocessor, x: np.ndarray) -> np.ndarray:
    """A trained model's predictions for encoded rows ``x`` (the preprocessor's columns, in order):
    probabilities ``(n, k)`` for classification, values ``(n,)`` for regression."""
    columns = {name: x[:, j] for j, name in enumerate(pre.columns)}
    return np.asarray(learner(family).predict(model, columns, pre))


def train_local(
    family: str,
    params: dict[str, Any],
    data: TrialData,
    *,
    metric: str | None = None,
    num_boost_round: int = 300,
    early_stopping_rounds: int | None = 30,
    threads: int = 1,
    on_round: RoundFn | None = None,
    deadline: float | None = None,
) -> TrainResult:
    """Boost one model in this process; ``on_round`` sees the validation metrics after every round.

    With ``early_stopping_rounds=None`` the model keeps every round (as on Ray Train): a refit's
    round count is fixed in advance and its validation rows are training rows. Past ``deadline`` (a
    Unix time) boosting stops after the current round, the first round at least, and the model is kept
    as of its best round so far (``deadline_reached`` in the result).
    """
    pre = Preprocessor.from_dict(data.preprocessor)
    mod = learner(family)
    metrics = resolve_metrics(family, pre.task, [metric] if metric else None)
    lib_params = mod.build_params(
        task=pre.task,
        num_classes=pre.num_classes,
        objective=mod.OBJECTIVES[pre.task],
        metrics=metrics,
        threads=threads,
        use_gpu=False,
        params=params,
    )
    stopper = _Stopper(metrics, early_stopping_rounds, on_round, deadline)
    started = time.perf_counter()

    def result(model: Any) -> TrainResult:
        """``model`` (as boosted so far) kept to its best round, with how it was trained."""
        wall = time.perf_counter() - started
        history = stopper.history[metrics[0].name]
        rounds = len(history)
        best = stopper.best_iteration
        if early_stopping_rounds is None or best < 0:
            best = rounds - 1
        model = mod.truncate(model, best + 1)
        gains = mod.importance(model, pre.columns)
        total = sum(gains.values()) or 1.0
        return TrainResult(
            family=family,
            task=pre.task,
            model=model,
            preprocessor=pre,
            metric_name=metrics[0].name,
            history={k: list(v) for k, v in stopper.history.items()},
            best_iteration=best,
            best_score=float(history[best]) if rounds else float("nan"),
            num_rounds=rounds,
            feature_importance={k: v / total for k, v in gains.items()},
            wall_time_s=wall,
            params={k: v for k, v in lib_params.items() if isinstance(v, int | float | str | bool)},
            timings={"train_s": wall},
            ingest={"mode": "in_process", "rows": len(data.y_train), "valid_rows": len(data.y_valid)},
            deadline_reached=stopper.deadline_reached,
        )

    stopper.build = result
    return result(mod.fit_local(lib_params, data, pre, num_boost_round, stopper))
