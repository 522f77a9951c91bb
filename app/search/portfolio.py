"""A portfolio of starting points (``search.portfolio``): configurations that did well across many
datasets, evaluated in order after every family's defaults and before Optuna samples on its own, so
TPE continues from them (warm start).

``portfolio.json`` is data, made by ``bench/portfolio.py`` from AutoGluon's zeroshot portfolio (learned
offline from the TabRepo datasets, none of which judge this project in ``bench/quality.py``): its
LightGBM, CatBoost and XGBoost configurations renamed to this project's searched parameters, in
AutoGluon's order (its priority) across families. What it could not carry over is listed in the file.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

PORTFOLIO = Path(__file__).with_name("portfolio.json")


@cache
def _points() -> tuple[tuple[str, dict[str, Any]], ...]:
    return tuple((p["family"], p["params"]) for p in json.loads(PORTFOLIO.read_text())["points"])


def portfolio_points(families: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """``(family, params)`` of the portfolio's points for ``families``, best first; params use the
    family's own searched names, unclipped (``app.search.spaces.initial_points`` sizes them). Each
    params dict is a copy (its values are plain scalars): the cached file stays as read."""
    keep = set(families)
    return [(family, dict(params)) for family, params in _points() if family in keep]
