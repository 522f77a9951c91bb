"""Search spaces of the three learners, sized from the data, each with good initial points: the
library's defaults and a slower, more regularised configuration (the search tries them first, so every
family has a strong model on the leaderboard and the ensemble can mix families).

Parameters are flat keys ``"<family>__<param>"`` so that one conditional space over families works with
Optuna (define-by-run: only the chosen family's parameters are sampled) and with random search.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SEP = "__"


@dataclass(frozen=True)
class Param:
    """One hyperparameter: ``kind`` is float / int / logfloat / logint."""

    name: str
    kind: str
    low: float
    high: float


def xgboost_space(n_rows: int, n_features: int, task: str) -> tuple[list[Param], list[dict[str, Any]]]:
    deep = 12 if n_rows > 100_000 else 10
    space = [
        Param("eta", "logfloat", 0.01, 0.3),
        Param("max_depth", "int", 3, deep),
        Param("min_child_weight", "logfloat", 0.1, 32.0),
        Param("subsample", "float", 0.5, 1.0),
        Param("colsample_bytree", "float", 0.4 if n_features > 4 else 0.8, 1.0),
        Param("reg_lambda", "logfloat", 1e-3, 10.0),
        Param("reg_alpha", "logfloat", 1e-3, 10.0),
    ]
    initial = {
        "eta": 0.1,
        "max_depth": 6,
        "min_child_weight": 1.0,
        "subsample": 1.0,
        "colsample_bytree": 1.0,
        "reg_lambda": 1.0,
        "reg_alpha": 1e-3,
    }
    slow = {
        **initial,
        "eta": 0.05,
        "max_depth": 8 if n_rows > 10_000 else 4,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "min_child_weight": 2.0,
    }
    return space, [initial, slow]


def lightgbm_space(n_rows: int, n_features: int, task: str) -> tuple[list[Param], list[dict[str, Any]]]:
    max_leaves = int(min(512, max(8, n_rows // 20)))
    max_child = max(3, min(200, n_rows // 50))
    space = [
        Param("learning_rate", "logfloat", 0.01, 0.3),
        Param("num_leaves", "logint", 4, max_leaves),
        Param("min_child_samples", "logint", 2, max_child),
        Param("feature_fraction", "float", 0.4 if n_features > 4 else 0.8, 1.0),
        Param("bagging_fraction", "float", 0.5, 1.0),
        Param("lambda_l2", "logfloat", 1e-3, 10.0),
    ]
    initial = {
        "learning_rate": 0.1,
        "num_leaves": min(31, max_leaves),
        "min_child_samples": 2 if n_rows < 500 else min(20, max_child),
        "feature_fraction": 1.0,
        "bagging_fraction": 1.0,
        "lambda_l2": 1e-3,
    }
    slow = {
        **initial,
        "learning_rate": 0.05,
        "num_leaves": min(63 if n_rows > 10_000 else 15, max_leaves),
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "lambda_l2": 1.0,
    }
    return space, [initial, slow]


def catboost_space(n_rows: int, n_features: int, task: str) -> tuple[list[Param], list[dict[str, Any]]]:
    space = [
        Param("learning_rate", "logfloat", 0.02, 0.3),
        Param("depth", "int", 4, 8 if n_rows < 1_000_000 else 10),
        Param("l2_leaf_reg", "logfloat", 1.0, 10.0),
        Param("random_strength", "logfloat", 0.1, 10.0),
    ]
    initial = {"learning_rate": 0.1, "depth": 6, "l2_leaf_reg": 3.0, "random_strength": 1.0}
    slow = {
        "learning_rate": 0.05,
        "depth": 8 if n_rows > 10_000 else 4,
        "l2_leaf_reg": 5.0,
        "random_strength": 1.0,
    }
    return space, [initial, slow]


SPACES: dict[str, Callable[[int, int, str], tuple[list[Param], list[dict[str, Any]]]]] = {
    "xgboost": xgboost_space,
    "lightgbm": lightgbm_space,
    "catboost": catboost_space,
}


def fixed_params(family: str) -> dict[str, Any]:
    """Parameters every trial of a family gets (they make the sampled ones mean what they say)."""
    return {"lightgbm": {"bagging_freq": 1}}.get(family, {})


def split_config(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``{"family": f, "f__p": v, "g__q": w}`` -> ``(f, {"p": v})``."""
    family = config["family"]
    prefix = family + SEP
    params = {k[len(prefix) :]: _plain(v) for k, v in config.items() if k.startswith(prefix)}
    return family, {**fixed_params(family), **params}


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


class OptunaSpace:
    """Define-by-run space for ``OptunaSearch``: pick a family, then sample only its parameters.

    A class, not a closure, because Tune pickles the searcher into its experiment state for resume.
    """

    def __init__(self, families: list[str], n_rows: int, n_features: int, task: str) -> None:
        self.spaces = {f: SPACES[f](n_rows, n_features, task)[0] for f in families}
        self.families = list(families)

    def __call__(self, trial) -> None:
        family = trial.suggest_categorical("family", self.families)
        for p in self.spaces[family]:
            name = f"{family}{SEP}{p.name}"
            if p.kind in ("int", "logint"):
                trial.suggest_int(name, int(p.low), int(p.high), log=p.kind == "logint")
            else:
                trial.suggest_float(name, p.low, p.high, log=p.kind == "logfloat")


def random_space(families: list[str], n_rows: int, n_features: int, task: str) -> dict[str, Any]:
    """A Tune ``param_space`` for random search over the same conditional space."""
    from ray import tune

    out: dict[str, Any] = {"family": tune.choice(families)}
    for f in families:
        for p in SPACES[f](n_rows, n_features, task)[0]:
            name = f"{f}{SEP}{p.name}"
            if p.kind == "int":
                out[name] = tune.randint(int(p.low), int(p.high) + 1)
            elif p.kind == "logint":
                out[name] = tune.lograndint(int(p.low), int(p.high) + 1)
            elif p.kind == "logfloat":
                out[name] = tune.loguniform(p.low, p.high)
            else:
                out[name] = tune.uniform(p.low, p.high)
    return out


def initial_points(families: list[str], n_rows: int, n_features: int, task: str) -> list[dict[str, Any]]:
    """Each family's initial points as flat configs, evaluated first by Optuna: every family's defaults,
    then every family's slower configuration."""
    per_family = {f: SPACES[f](n_rows, n_features, task)[1] for f in families}
    return [
        {"family": f, **{f"{f}{SEP}{k}": v for k, v in points[i].items()}}
        for i in range(max(len(p) for p in per_family.values()))
        for f, points in per_family.items()
        if i < len(points)
    ]


def default_rounds(n_rows: int) -> int:
    """More rounds for more data: 200 at 1k rows up to 1,000 at 1M rows and beyond."""
    return int(min(1000, max(200, 200 * math.log10(max(n_rows, 10)) / 3)))
