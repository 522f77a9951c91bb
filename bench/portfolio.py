"""Make ``app/search/portfolio.json``: AutoGluon's zeroshot portfolio, in this project's parameters.

    python bench/portfolio.py        # needs .bench-venv (bench/quality-requirements.txt), like quality.py

AutoGluon ships its portfolio as data (``autogluon.tabular.configs.zeroshot``): configurations per model
type, learned offline from the TabRepo datasets, each with a priority (higher first) that orders them
across model types. This keeps its LightGBM, CatBoost and XGBoost ones (GBM, CAT, XGB) that set at least
one parameter, in priority order, renames each parameter to the one this project searches (``RENAME``),
and lists in the file, by name, each parameter it could not carry over (``DROPPED``). The search clips
every value into its space for the data at hand (``app.search.spaces.initial_points``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from quality import BENCH_PYTHON, CREATE_VENV  # noqa: E402

from app.atomic import write_json  # noqa: E402
from app.learners import learner  # noqa: E402
from app.search.portfolio import PORTFOLIO  # noqa: E402

MODULE = "autogluon.tabular.configs.zeroshot.zeroshot_portfolio_2023"
SOURCE = "hyperparameter_portfolio_zeroshot_2023"
# AutoGluon's model type -> (this project's family, the name AutoGluon gives its models).
FAMILIES = {"GBM": ("lightgbm", "LightGBM"), "CAT": ("catboost", "CatBoost"), "XGB": ("xgboost", "XGBoost")}
RENAME = {
    "lightgbm": {
        "learning_rate": "learning_rate",
        "num_leaves": "num_leaves",
        "feature_fraction": "feature_fraction",
        "min_data_in_leaf": "min_child_samples",
        "extra_trees": "extra_trees",
    },
    "catboost": {
        "learning_rate": "learning_rate",
        "depth": "depth",
        "l2_leaf_reg": "l2_leaf_reg",
    },
    "xgboost": {
        "learning_rate": "eta",
        "max_depth": "max_depth",
        "min_child_weight": "min_child_weight",
        "colsample_bytree": "colsample_bytree",
    },
}
# Why a parameter is not carried over (a parameter neither here nor in RENAME is an error).
DROPPED = {
    "catboost": {
        "grow_policy": "symmetric trees only: a trial keeps its best round by truncating its model, which "
        "CatBoost does only for symmetric trees (Depthwise: 'Truncate support only symmetric trees')",
        "max_ctr_complexity": "not searched here: CatBoost's default for its categorical features is kept",
        "one_hot_max_size": "not searched here: CatBoost's default for its categorical features is kept",
    },
    "xgboost": {"enable_categorical": "this project always gives XGBoost its categorical columns natively"},
}
# A configuration without a priority takes its model type's default one in AutoGluon, which is above
# every learned configuration's (those are 0 and below).
UNRANKED = 1


def read_autogluon(python: Path) -> tuple[str, dict[str, list[dict[str, Any]]]]:
    """AutoGluon's version and its portfolio, read by ``python`` (the baselines' environment)."""
    code = (
        "import json, autogluon.tabular as t, importlib; "
        f"p = getattr(importlib.import_module({MODULE!r}), {SOURCE!r}); "
        "print(json.dumps({'version': t.__version__, 'portfolio': p}))"
    )
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout
    data = json.loads(out.strip().splitlines()[-1])
    return data["version"], data["portfolio"]


def convert(portfolio: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The points of ``portfolio`` (AutoGluon's layout) this project can use, best first."""
    points = []
    for kind, (family, model) in FAMILIES.items():
        searched = {p.name for p in learner(family).search_space(1_000_000, 100, "binary")[0]}
        for config in portfolio.get(kind, []):
            ag_args = config.get("ag_args", {})
            given = {k: v for k, v in config.items() if k != "ag_args"}
            unknown = set(given) - set(RENAME[family]) - set(DROPPED.get(family, {}))
            if unknown:
                raise ValueError(f"{model}{ag_args.get('name_suffix', '')}: no mapping for {sorted(unknown)}")
            params = {RENAME[family][k]: v for k, v in given.items() if k in RENAME[family]}
            if not params:  # the library's defaults: the search's first point already
                continue
            assert set(params) <= searched, (family, set(params) - searched)
            points.append(
                {
                    "family": family,
                    "name": model + ag_args.get("name_suffix", ""),
                    "priority": ag_args.get("priority", UNRANKED),
                    "params": params,
                }
            )
    return sorted(points, key=lambda p: -p["priority"])  # stable: AutoGluon's order within a priority


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--python", type=Path, default=BENCH_PYTHON, help="Python of the baselines' venv.")
    parser.add_argument("--out", type=Path, default=PORTFOLIO)
    args = parser.parse_args()
    if not args.python.exists():
        sys.exit(f"error: {args.python} is missing; create the baselines' environment with:\n  {CREATE_VENV}")
    version, portfolio = read_autogluon(args.python)
    points = convert(portfolio)
    write_json(
        args.out,
        {
            "source": f"autogluon.tabular {version}, {MODULE}.{SOURCE}",
            "made_by": "bench/portfolio.py",
            "dropped": DROPPED,
            "points": points,
        },
    )
    by_family = {f: sum(p["family"] == f for p in points) for f, _ in FAMILIES.values()}
    print(json.dumps({"out": str(args.out), "points": len(points), "by_family": by_family}))


if __name__ == "__main__":
    main()
