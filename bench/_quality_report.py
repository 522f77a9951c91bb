"""Figures of bench/quality.py, computed in one place: the per-dataset tables and the closing JSON's fields.

``summarize`` takes every scored run (per budget, dataset, system and seed) and, per budget, reduces each
system to one score per dataset: the median of its seeds' test scores (the peers run one seed: that
score). Against those it computes, per budget:

* ``worst_ratio`` per system: the worst over datasets of the system's score relative to the best peer's
  (FLAML or AutoGluon, whichever scored better on that dataset), oriented so higher is better (AUC:
  system / best; losses: best / system), and ``worst_dataset`` where that was;
* ``at_least_flaml`` / ``at_least_autogluon``: datasets where the project's median is at least as good,
  out of ``compared_flaml`` / ``compared_autogluon``; ``ratio_vs_flaml`` / ``ratio_vs_autogluon``: the
  mean over datasets of the project's median relative to that peer;
* ``max_over_budget`` per system: the longest run's wall time ÷ budget − 1 over every fit and seed,
  ``over_budget_runs`` (those over 1.1 x budget) and ``failed`` runs.
"""

from __future__ import annotations

import numpy as np
from _quality_score import PRIMARY, relative

OVER_BUDGET = 1.1  # a fit over budget × this is over budget
PEERS = ("flaml", "autogluon")


def fmt(v: float | None, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def budget_key(budget: float) -> str:
    """``b120`` for 120 s: the closing JSON's key of a budget's figures."""
    return f"b{budget:g}"


def _rounded(value):
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    if isinstance(value, float | np.floating):
        return round(float(value), 5)
    return value


def _best(task: str, scores: list[float]) -> float | None:
    if not scores:
        return None
    return max(scores) if PRIMARY[task][1] else min(scores)


def _worst(values: dict[str, float | None]) -> tuple[float | None, str | None]:
    known = {k: v for k, v in values.items() if v is not None}
    if not known:
        return None, None
    name = min(known, key=known.get)
    return known[name], name


def summarize_budget(
    splits: list[dict], runs: dict[str, dict[str, dict[int, dict]]], systems: list[str], budget: float
) -> tuple[dict, dict]:
    """One budget's closing figures and its per-dataset details; prints its table.

    ``runs[dataset][system][seed]`` has ``scores`` and ``wall_s``, or ``error``.
    """

    def seed_scores(name: str, task: str, system: str) -> dict[int, float]:
        metric = PRIMARY[task][0]
        return {
            seed: run["scores"][metric]
            for seed, run in sorted(runs[name].get(system, {}).items())
            if "scores" in run
        }

    header = (
        f"{'dataset':<18}{'task':<11}{'metric':<9}"
        + "".join(f"{s:>11}" for s in systems)
        + "".join(f"{s + ' s':>13}" for s in systems)
        + f"{'vs best':>9}{'vs flaml':>10}{'vs ag':>8}  project per seed"
    )
    print(
        f"\nbudget {budget:g} s per fit; test-split scores (median over seeds), wall s (longest over seeds)"
    )
    print(header)
    print("-" * len(header))
    per_dataset, over, failed = {}, [], []
    vs: dict[str, list[float]] = {b: [] for b in PEERS}
    to_best: dict[str, dict[str, float | None]] = {s: {} for s in systems}
    worst_wall: dict[str, float | None] = {s: None for s in systems}
    for ds in splits:
        name, task = ds["name"], ds["task"]
        metric, higher = PRIMARY[task]
        seeds = {s: seed_scores(name, task, s) for s in systems}
        median = {s: float(np.median(list(v.values()))) if v else None for s, v in seeds.items()}
        best_peer = _best(task, [median[p] for p in PEERS if median.get(p) is not None])
        for s in systems:
            to_best[s][name] = relative(task, median[s], best_peer)
        ratios = {b: relative(task, median.get("project"), median.get(b)) for b in PEERS}
        for b, r in ratios.items():
            if r is not None:
                vs[b].append(r)
        walls: dict[str, float | None] = {}
        for s in systems:
            for seed, run in sorted(runs[name].get(s, {}).items()):
                if "error" in run:
                    failed.append(f"{s}:{name}:seed{seed}")
                w = run.get("wall_s")
                if w is None:
                    continue
                walls[s] = max(walls.get(s) or 0.0, w)
                worst_wall[s] = max(worst_wall[s] if worst_wall[s] is not None else -1.0, w / budget - 1.0)
                if w > OVER_BUDGET * budget:
                    over.append(f"{s}:{name}:seed{seed}:{w:.1f}s")
        print(
            f"{name:<18}{task:<11}{metric + ('↑' if higher else '↓'):<9}"
            + "".join(f"{fmt(median[s]):>11}" for s in systems)
            + "".join(f"{fmt(walls.get(s), 1):>13}" for s in systems)
            + f"{fmt(to_best.get('project', {}).get(name), 3):>9}"
            + f"{fmt(ratios['flaml'], 3):>10}{fmt(ratios['autogluon'], 3):>8}  "
            + " ".join(fmt(v) for v in seeds.get("project", {}).values())
        )
        per_dataset[name] = {
            "task": task,
            "metric": metric,
            "rows": ds["rows"],
            "best_peer": best_peer,
            **{
                s: {
                    "median": median[s],
                    "ratio_to_best_peer": to_best[s][name],
                    "seeds": {
                        str(seed): {k: v for k, v in run.items() if k not in ("best_config", "classes")}
                        for seed, run in sorted(runs[name].get(s, {}).items())
                    },
                }
                for s in systems
            },
            "ratio_vs_flaml": ratios["flaml"],
            "ratio_vs_autogluon": ratios["autogluon"],
        }
    at_least = {b: int(sum(r >= 1.0 for r in rs)) for b, rs in vs.items()}
    mean = {b: float(np.mean(rs)) if rs else None for b, rs in vs.items()}
    worst = {s: _worst(to_best[s]) for s in systems}
    print(
        f"\n{budget:g} s: worst vs best peer: "
        + ", ".join(f"{s} {fmt(w[0], 3)} ({w[1] or '-'})" for s, w in worst.items())
        + f"   project at least FLAML: {at_least['flaml']}/{len(vs['flaml'])}, AutoGluon: "
        f"{at_least['autogluon']}/{len(vs['autogluon'])}   mean vs FLAML {fmt(mean['flaml'])}, vs AutoGluon "
        f"{fmt(mean['autogluon'])}   max over budget: "
        + ", ".join(f"{s} {fmt(w, 3)}" for s, w in worst_wall.items())
        + f"   over budget × {OVER_BUDGET}: {over or 'none'}"
    )
    figures = {
        "time_budget_s": budget,
        "seeds": {s: sorted({seed for name in runs for seed in runs[name].get(s, {})}) for s in systems},
        "worst_ratio": {s: None if w[0] is None else round(w[0], 4) for s, w in worst.items()},
        "worst_dataset": {s: w[1] for s, w in worst.items()},
        "at_least_flaml": at_least["flaml"],
        "compared_flaml": len(vs["flaml"]),
        "at_least_autogluon": at_least["autogluon"],
        "compared_autogluon": len(vs["autogluon"]),
        "ratio_vs_flaml": None if mean["flaml"] is None else round(mean["flaml"], 4),
        "ratio_vs_autogluon": None if mean["autogluon"] is None else round(mean["autogluon"], 4),
        "max_over_budget": {s: None if w is None else round(w, 4) for s, w in worst_wall.items()},
        "over_budget_runs": over,
        "failed": failed,
        "scores": {
            name: {s: None if d[s]["median"] is None else round(d[s]["median"], 5) for s in systems}
            for name, d in per_dataset.items()
        },
    }
    return figures, _rounded(per_dataset)


def summarize(
    splits: list[dict],
    runs: dict[float, dict[str, dict[str, dict[int, dict]]]],
    systems: list[str],
    budgets: list[float],
) -> tuple[dict, dict]:
    """The closing JSON's fields (one ``b<budget>`` entry per budget, ``ratio`` from the first budget)
    and the per-budget, per-dataset, per-seed details for results.json.

    ``runs[budget][dataset][system][seed]`` has ``scores`` and ``wall_s``, or ``error``.
    """
    figures, details = {}, {}
    for budget in budgets:
        figures[budget_key(budget)], details[budget_key(budget)] = summarize_budget(
            splits, runs[budget], systems, budget
        )
    main = figures[budget_key(budgets[0])]
    return {
        "ratio": float("nan") if main["ratio_vs_flaml"] is None else main["ratio_vs_flaml"],
        "n": len(splits),
        "over_budget": any(f["over_budget_runs"] for f in figures.values()),
        "failed": [f"{key}:{run}" for key, f in figures.items() for run in f["failed"]],
        **figures,
    }, details
