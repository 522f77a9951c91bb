"""The learner registry: the one place that knows which model families exist and where each lives.

A family is one module that implements ``Learner`` (``app/train/xgb.py``, ``lgbm.py``, ``cat.py``);
adding one is that module plus one line in ``_LEARNERS`` (or ``register(name, "pkg.module")``). Training,
the search, tracking and the report ask ``learner(name)`` and never branch on a family's name.

Modules are imported on first use, so ``import app.learners`` loads no boosting library.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from app.data.encode import Preprocessor
    from app.train.metrics import NativeMetric

_LEARNERS: dict[str, str] = {
    "xgboost": "app.train.xgb",
    "lightgbm": "app.train.lgbm",
    "catboost": "app.train.cat",
}


@dataclass(frozen=True)
class Param:
    """One searched hyperparameter: ``kind`` float / int / logfloat / logint between ``low`` and
    ``high``, or choice among ``choices``."""

    name: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    choices: tuple = ()

    def clip(self, value: Any) -> Any:
        """``value`` moved into this parameter's range (rounded for integers); None for a choice it does
        not offer."""
        if self.kind == "choice":
            return value if value in self.choices else None
        value = min(self.high, max(self.low, value))
        return int(round(value)) if self.kind in ("int", "logint") else float(value)


class InMemoryData(Protocol):
    """Encoded training and validation arrays, as the search's trials hold them."""

    x_train: np.ndarray
    y_train: np.ndarray
    w_train: np.ndarray | None
    x_valid: np.ndarray
    y_valid: np.ndarray
    w_valid: np.ndarray | None


class RoundObserver(Protocol):
    """Sees the validation metrics (library names) after every round, and the model being trained where
    the library exposes it (a search trial persists it); True stops the training."""

    def after_round(self, done: int, native: dict[str, float], model: Any = None) -> bool: ...


class Learner(Protocol):
    """What a family module provides (module-level names).

    Attributes:
        MODEL_FILE: the native model file's name in a model directory.
        OBJECTIVES: the library's objective per task (``binary``, ``multiclass``, ``regression``).
        PACKAGES: pip packages a logged model needs.
        SPLIT_VALID: whether Ray Train splits the validation set across workers (else each reads it all).
        MAX_WORKERS: most Ray Train workers it trains on (None: any number).
        EXTERNAL_MEMORY: whether a worker can stream a shard over the memory budget from disk.
        FIXED_PARAMS: parameters every search trial gets.

    Optional: ``set_device(model, device)`` to predict on ``cuda``/``cpu``.
    """

    MODEL_FILE: str
    OBJECTIVES: dict[str, str]
    PACKAGES: tuple[str, ...]
    SPLIT_VALID: bool
    MAX_WORKERS: int | None
    EXTERNAL_MEMORY: bool
    FIXED_PARAMS: dict[str, Any]

    def native_metric(self, name: str, task: str) -> tuple[str, bool]:
        """The library's name of ``app.train.metrics`` metric ``name``, and whether it reports 1 - value."""

    def build_params(
        self,
        *,
        task: str,
        num_classes: int,
        objective: str,
        metrics: list[NativeMetric],
        threads: int,
        use_gpu: bool,
        params: dict[str, Any],
    ) -> dict[str, Any]: ...

    def search_space(self, n_rows: int, n_features: int, task: str) -> tuple[list[Param], list[dict]]:
        """The searched parameters, sized from the data, and initial points tried first."""

    def fit_local(
        self, params: dict, data: InMemoryData, pre: Preprocessor, rounds: int, observer: RoundObserver
    ) -> Any:
        """Boost in this process on in-memory arrays (search trials, cross-validation, refits)."""

    def trainer_class(self) -> type: ...

    def train_fn_per_worker(self, config: dict) -> None: ...

    def load(self, path: str | Path) -> Any: ...

    def save(self, model: Any, directory: Path) -> Path: ...

    def truncate(self, model: Any, rounds: int) -> Any: ...

    def importance(self, model: Any, features: list[str]) -> dict[str, float]: ...

    def predict(self, model: Any, columns: dict, pre: Preprocessor) -> np.ndarray: ...

    def native_frame(self, columns: dict, pre: Preprocessor) -> pd.DataFrame:
        """The features as the booster takes them (what the MLflow flavour's signature describes)."""

    def shap_values(self, model: Any, columns: dict, pre: Preprocessor) -> np.ndarray:
        """TreeSHAP contributions: ``(n, f+1)``, ``(n, k, f+1)`` or ``(n, k*(f+1))``, bias last."""

    def save_mlflow(self, model: Any, path: str, **kwargs: Any) -> None:
        """Save with the library's MLflow flavour (``kwargs`` go to its ``save_model``)."""


def register(name: str, module: str) -> None:
    """Make ``module`` (importable path of a ``Learner`` module) the family called ``name``."""
    _LEARNERS[name] = module


def unregister(name: str) -> None:
    """Forget the family ``name`` (a test's learner, once the test is done)."""
    _LEARNERS.pop(name, None)


def names() -> tuple[str, ...]:
    """The registered families, in registration order."""
    return tuple(_LEARNERS)


def learner(name: str) -> Learner:
    """The module of family ``name``; a ``ValueError`` naming the choices for an unknown one."""
    if name not in _LEARNERS:
        raise ValueError(f"unknown model family {name!r}; choose one of {', '.join(_LEARNERS)}")
    return importlib.import_module(_LEARNERS[name])  # type: ignore[return-value]


def unknown(families: list[str]) -> list[str]:
    """The names in ``families`` that are not registered."""
    return sorted(set(families) - set(_LEARNERS))
