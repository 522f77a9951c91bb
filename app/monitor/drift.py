"""Drift statistics against the reference saved at training time: PSI on the reference's quantile bins
(numbers) or level frequencies (categories), a KS statistic against the reference distribution, and the
guide's ``DriftDetector`` (sliding windows of served rows and predictions)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

EPS = 1e-4  # floor for a bin's share: an empty bin would make PSI infinite
DECILES = ("0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9")
OTHER = "__other__"


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index between two distributions over the same bins (shares or counts)."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    e = np.clip(e / max(e.sum(), 1e-12), EPS, None)
    a = np.clip(a / max(a.sum(), 1e-12), EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass(frozen=True)
class NumericReference:
    """A numeric feature's reference: bin edges at its deciles with each bin's share, and its quantile
    function (``levels`` → ``values``) for the KS statistic."""

    edges: np.ndarray
    shares: np.ndarray
    levels: np.ndarray
    values: np.ndarray

    @classmethod
    def from_quantiles(cls, quantiles: Mapping[str, float]) -> NumericReference:
        pairs = sorted((float(q), float(v)) for q, v in quantiles.items())
        levels = np.array([q for q, _ in pairs])
        values = np.maximum.accumulate(np.array([v for _, v in pairs]))
        edges, shares, last_q = [], [], 0.0
        for key in DECILES:
            if key not in quantiles:
                continue
            v = float(quantiles[key])
            if edges and v <= edges[-1]:  # a repeated value (a discrete feature): merge the bins
                continue
            edges.append(v)
            shares.append(float(key) - last_q)
            last_q = float(key)
        shares.append(1.0 - last_q)
        return cls(np.array(edges), np.array(shares), levels, values)

    @classmethod
    def from_sample(cls, sample: Sequence[float]) -> NumericReference:
        x = np.asarray(sample, dtype=np.float64)
        x = x[np.isfinite(x)]
        qs = np.linspace(0, 1, 21)
        return cls.from_quantiles(
            {str(round(q, 2)): float(v) for q, v in zip(qs, np.quantile(x, qs), strict=True)}
        )

    def counts(self, x: np.ndarray) -> np.ndarray:
        return np.bincount(np.searchsorted(self.edges, x, side="right"), minlength=len(self.shares))

    def cdf(self, x: np.ndarray) -> np.ndarray:
        return np.interp(x, self.values, self.levels, left=0.0, right=1.0)


def numeric_drift(reference: NumericReference, window: np.ndarray) -> tuple[float, float]:
    """(PSI, KS) of a window of numbers against ``reference``; missing values are left out."""
    x = np.asarray(window, dtype=np.float64)
    x = np.sort(x[np.isfinite(x)])
    if len(x) == 0:
        return 0.0, 0.0
    n = len(x)
    ref = reference.cdf(x)
    ks = float(np.max(np.maximum(np.arange(1, n + 1) / n - ref, ref - np.arange(n) / n)))
    return psi(reference.shares, reference.counts(x)), ks


def categorical_reference(top_k: Iterable[tuple[Any, int]], total: int) -> dict[Any, float]:
    """Level shares from the profile's top-k counts; the levels beyond it share ``OTHER``."""
    counts = {level: float(c) for level, c in top_k}
    counts[OTHER] = max(float(total) - sum(counts.values()), 0.0)
    return counts


def categorical_drift(reference: Mapping[Any, float], window: Iterable[Any]) -> float:
    """PSI of a window of category values against ``reference`` level counts (nulls left out)."""
    keys = list(reference)
    index = {str(k): i for i, k in enumerate(keys)}
    other = index[OTHER]
    actual = np.zeros(len(keys))
    for value in window:
        if value is None:
            continue
        actual[index.get(str(value), other)] += 1
    if actual.sum() == 0:
        return 0.0
    return psi(np.array([reference[k] for k in keys]), actual)


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: str
    psi: float
    ks: float | None
    rows: int
    drifted: bool


class DriftDetector:
    """Sliding windows of served feature values and predictions, compared with the training reference.

    Example (guide):
        >>> detector = DriftDetector(window_size=10_000)
        >>> detector.set_reference_distribution(validation_predictions)  # doctest: +SKIP
        >>> detector.add_prediction(0.93)
        >>> detector.detect_prediction_drift()  # doctest: +SKIP
        (False, 0.013)
    """

    def __init__(
        self,
        window_size: int = 10_000,
        *,
        psi_threshold: float = 0.2,
        ks_threshold: float = 0.2,
        min_window: int = 500,
    ) -> None:
        self.window_size, self.psi_threshold = window_size, psi_threshold
        self.ks_threshold, self.min_window = ks_threshold, min_window
        self.predictions: deque[float] = deque(maxlen=window_size)
        self.features: dict[str, deque] = {}
        self.prediction_reference: NumericReference | None = None
        self.numeric: dict[str, NumericReference] = {}
        self.categorical: dict[str, dict[Any, float]] = {}

    def set_reference_distribution(self, predictions: Sequence[float]) -> None:
        """The predictions on validation rows (a score or probability per row) as the reference."""
        self.prediction_reference = NumericReference.from_sample(predictions)

    def set_reference_profile(self, profile: Any, features: Sequence[str]) -> None:
        """Per-feature references from the data profile (``profile.json``): quantiles or top-k counts."""
        for name in features:
            column = profile[name]
            if column.quantiles:
                self.numeric[name] = NumericReference.from_quantiles(column.quantiles)
            elif column.top_k:
                self.categorical[name] = categorical_reference(column.top_k, column.count - column.nulls)
            self.features[name] = deque(maxlen=self.window_size)

    def add_prediction(self, prediction: float) -> None:
        self.predictions.append(float(prediction))

    def add_predictions(self, predictions: Iterable[float]) -> None:
        self.predictions.extend(float(p) for p in predictions)

    def add_rows(self, columns: Mapping[str, Sequence[Any]]) -> None:
        """Served feature values, column by column (features without a reference are ignored)."""
        for name, values in columns.items():
            if name in self.features:
                self.features[name].extend(values)

    def detect_prediction_drift(self) -> tuple[bool, float]:
        """(drifted, PSI) of the prediction window; never drifted below ``min_window`` predictions."""
        if self.prediction_reference is None:
            raise ValueError("no reference: call set_reference_distribution(validation_predictions) first")
        if len(self.predictions) < self.min_window:
            return False, 0.0
        score, _ = numeric_drift(self.prediction_reference, np.fromiter(self.predictions, float))
        return score >= self.psi_threshold, score

    def detect_feature_drift(self) -> list[FeatureDrift]:
        """Each referenced feature's drift over its window."""
        out = []
        for name, window in self.features.items():
            rows = len(window)
            if name in self.numeric:
                values = np.array(window, dtype=np.float64)  # None becomes NaN
                score, ks = numeric_drift(self.numeric[name], values) if rows else (0.0, 0.0)
                drifted = rows >= self.min_window and (score >= self.psi_threshold or ks >= self.ks_threshold)
                out.append(FeatureDrift(name, "number", score, ks, rows, drifted))
            elif name in self.categorical:
                score = categorical_drift(self.categorical[name], window) if rows else 0.0
                out.append(
                    FeatureDrift(
                        name,
                        "category",
                        score,
                        None,
                        rows,
                        rows >= self.min_window and score >= self.psi_threshold,
                    )
                )
        return out
