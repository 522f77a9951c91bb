"""One conditional search space over the registered learners: each learner declares its own parameters
and initial points (``search_space`` in ``app/train/<family>.py``: the library's defaults and a slower,
more regularised configuration, tried first, so every family has a strong model on the leaderboard and
the ensemble can mix families).

Parameters are flat keys ``"<family>__<param>"`` in one conditional space over families, sampled by
Optuna (define-by-run: only the chosen family's parameters are sampled), by TPE or at random.
"""

from __future__ import annotations

import math
from typing import Any

from app.learners import learner

SEP = "__"
# The key of a trial's config that holds its training rows, on a row ladder (app.search.ladder).
ROWS = "rows"


def split_config(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``{"family": f, "f__p": v, "g__q": w}`` -> ``(f, {"p": v})``."""
    family = config["family"]
    prefix = family + SEP
    params = {k[len(prefix) :]: _plain(v) for k, v in config.items() if k.startswith(prefix)}
    return family, {**learner(family).FIXED_PARAMS, **params}


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


class OptunaSpace:
    """Define-by-run space for ``OptunaSearch``: pick a family, then sample only its parameters.

    A class, not a closure, because Tune pickles the searcher into its experiment state for resume.
    """

    def __init__(self, families: list[str], n_rows: int, n_features: int, task: str) -> None:
        self.spaces = {f: learner(f).search_space(n_rows, n_features, task)[0] for f in families}
        self.families = list(families)

    def __call__(self, trial) -> None:
        family = trial.suggest_categorical("family", self.families)
        for p in self.spaces[family]:
            name = f"{family}{SEP}{p.name}"
            if p.kind == "choice":
                trial.suggest_categorical(name, list(p.choices))
            elif p.kind in ("int", "logint"):
                trial.suggest_int(name, int(p.low), int(p.high), log=p.kind == "logint")
            else:
                trial.suggest_float(name, p.low, p.high, log=p.kind == "logfloat")


def initial_points(
    families: list[str],
    n_rows: int,
    n_features: int,
    task: str,
    portfolio: int | None = 0,
    *,
    trials: int | None = None,
) -> list[dict[str, Any]]:
    """The flat configs Optuna evaluates first: every family's defaults, then every family's slower
    configuration, then the first ``portfolio`` points (None: all) of the portfolio
    (``app.search.portfolio``) of the searched families, each moved into its family's space for this
    data; a point equal to one before it is tried once.

    A search bounded to ``trials`` trials gives the points at most half of them (the defaults always
    run): the portfolio is a prior learned on other data, and the searcher needs trials of its own to
    adapt to this data. A search ended by its time budget keeps every point."""
    from app.search.portfolio import portfolio_points

    sized = {f: learner(f).search_space(n_rows, n_features, task) for f in families}
    points = [
        (f, sized[f][1][i])
        for i in range(max(len(s[1]) for s in sized.values()))
        for f in families
        if i < len(sized[f][1])
    ]
    if trials is not None:
        room = max(0, trials // 2 - len(points))
        portfolio = room if portfolio is None else min(portfolio, room)
    for family, params in portfolio_points(families)[:portfolio]:
        space, (defaults, *_) = sized[family]
        point = dict(defaults)
        for p in space:
            if p.name in params and (value := p.clip(params[p.name])) is not None:
                point[p.name] = value
        points.append((family, point))
    unique = list(dict.fromkeys((f, tuple(sorted(p.items()))) for f, p in points))
    return [{"family": f, **{f"{f}{SEP}{k}": v for k, v in p}} for f, p in unique]


def default_rounds(n_rows: int) -> int:
    """A trial's round limit: 1,000 up to 10,000 rows, a thousand more per tenfold rows, 4,000 from 10M.

    A bound early stopping reaches first: the searched learning rates go down to 0.01, where a few
    hundred rounds are too few, and a trial ended by the time budget keeps its best model so far.
    """
    return int(min(4000, max(1000, 1000 * (math.log10(max(n_rows, 10)) - 3))))
