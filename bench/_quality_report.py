"""Figures of bench/quality.py, computed in one place: the per-dataset table and the closing JSON's fields.

``summarize`` turns every system's test scores and fit wall times into the comparison the issue asks for:
``ratio`` (mean of the project's score relative to FLAML's, higher is better), ``at_least_flaml`` and
``at_least_autogluon`` (datasets where the project scores at least as well), ``n`` and
``max_over_budget`` (per system: the largest fit wall time ÷ budget − 1).
"""

from __future__ import annotations

import numpy as np
from _quality_score import PRIMARY, relative

OVER_BUDGET = 1.1  # a fit over budget × this is over budget


def fmt(v: float | None, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _rounded(value):
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    if isinstance(value, float | np.floating):
        return round(float(value), 5)
    return value


def summarize(
    splits: list[dict], results: dict[str, dict[str, dict]], systems: list[str], budget: float
) -> dict:
    """Per-dataset table printed; returns the closing JSON's fields (``datasets`` holds every run's details).

    ``results[dataset][system]`` has ``scores`` and ``fit_s``, or ``error``. A dataset counts towards
    ``at_least_*`` only where both systems have a score; ``compared_*`` says on how many that was.
    """

    def primary(name: str, task: str, system: str) -> float | None:
        return results[name].get(system, {}).get("scores", {}).get(PRIMARY[task][0])

    def wall(name: str, system: str) -> float | None:
        return results[name].get(system, {}).get("fit_s")

    header = (
        f"{'dataset':<18}{'task':<11}{'metric':<9}"
        + "".join(f"{s:>11}" for s in systems)
        + "".join(f"{s + ' s':>13}" for s in systems)
        + f"{'vs flaml':>10}{'vs ag':>8}"
    )
    print(f"\nbudget {budget:g} s per system per dataset; test-split scores")
    print(header)
    print("-" * len(header))
    per_dataset, over, failed = {}, [], []
    vs = {"flaml": [], "autogluon": []}
    worst = {s: None for s in systems}
    for ds in splits:
        name, task = ds["name"], ds["task"]
        metric, higher = PRIMARY[task]
        p = primary(name, task, "project")
        ratios = {b: relative(task, p, primary(name, task, b)) for b in vs}
        for b, r in ratios.items():
            if r is not None:
                vs[b].append(r)
        for s in systems:
            if "error" in results[name].get(s, {}):
                failed.append(f"{s}:{name}")
            w = wall(name, s)
            if w is None:
                continue
            worst[s] = max(worst[s] if worst[s] is not None else -1.0, w / budget - 1.0)
            if w > OVER_BUDGET * budget:
                over.append(f"{s}:{name}:{w:.1f}s")
        print(
            f"{name:<18}{task:<11}{metric + ('↑' if higher else '↓'):<9}"
            + "".join(f"{fmt(primary(name, task, s)):>11}" for s in systems)
            + "".join(f"{fmt(wall(name, s), 1):>13}" for s in systems)
            + f"{fmt(ratios['flaml'], 3):>10}{fmt(ratios['autogluon'], 3):>8}"
        )
        per_dataset[name] = {
            "task": task,
            "metric": metric,
            "rows": ds["rows"],
            **{
                s: {k: v for k, v in results[name].get(s, {}).items() if k not in ("best_config", "classes")}
                for s in systems
            },
            "ratio_vs_flaml": ratios["flaml"],
            "ratio_vs_autogluon": ratios["autogluon"],
        }
    at_least = {b: int(sum(r >= 1.0 for r in rs)) for b, rs in vs.items()}
    ratio = float(np.mean(vs["flaml"])) if vs["flaml"] else float("nan")
    ratio_ag = float(np.mean(vs["autogluon"])) if vs["autogluon"] else None
    print(
        f"\nratio vs FLAML (mean, higher is better): {fmt(ratio)}  at least as good: "
        f"{at_least['flaml']}/{len(vs['flaml'])}   vs AutoGluon: {fmt(ratio_ag)}, "
        f"{at_least['autogluon']}/{len(vs['autogluon'])}   max over budget: "
        + ", ".join(f"{s} {fmt(w, 3)}" for s, w in worst.items())
        + f"   over budget × {OVER_BUDGET}: {over or 'none'}"
    )
    return {
        "ratio": ratio,
        "n": len(splits),
        "at_least_flaml": at_least["flaml"],
        "compared_flaml": len(vs["flaml"]),
        "at_least_autogluon": at_least["autogluon"],
        "compared_autogluon": len(vs["autogluon"]),
        "ratio_vs_autogluon": None if ratio_ag is None else round(ratio_ag, 4),
        "max_over_budget": {s: None if w is None else round(w, 4) for s, w in worst.items()},
        "over_budget": bool(over),
        "over_budget_runs": over,
        "failed": failed,
        "fit_s": {
            name: {s: None if wall(name, s) is None else round(wall(name, s), 2) for s in systems}
            for name in results
        },
        "datasets": _rounded(per_dataset),
    }
