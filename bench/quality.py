"""Model quality: ``automl fit`` (AutoMLEngine) vs FLAML and AutoGluon-Tabular (GBMs), same budget and cores.

    uv venv .bench-venv --python 3.11 && UV_COMPILE_BYTECODE=1 uv pip install --python .bench-venv \
        -r bench/quality-requirements.txt
    .venv/bin/python bench/quality.py [--time-budget 120] [--cpus 2] [--systems project,flaml,autogluon] \
        [--datasets breast_cancer,merchant_fraud,...]   # default: all ten but wine; over an hour at 120 s

A generated dataset is built once per seed and kept under ``--out``/datasets; every dataset is split
once (75 % train / 25 % test, stratified for classifiers, fixed seed) into Parquet files under ``--out``;
all three systems read those same files. Each system gets the same wall-clock budget for its fit and
the same number of cores, one system at a time:

* the project: ``AutoMLEngine(RayTuneOptimizer(RayTuneSettings(num_cpus=2, time_budget_s=B,
  num_samples=N, metric=M))).fit(train.parquet, target=...)`` — what ``automl fit`` runs — in this
  process on a local Ray (``num_cpus=2``), task auto-detected, tracking on as in the CLI (``--no-track``
  turns it off); no ``num_samples`` unless given, as in the CLI: the budget ends the search;
* FLAML (``estimator_list=["lgbm", "xgboost", "catboost"]``, ``n_jobs=2``) and AutoGluon-Tabular
  restricted to its GBMs (``hyperparameters={"GBM": {}, "CAT": {}, "XGB": {}}``, ``num_cpus=2``),
  each in a subprocess of the baselines' own environment ``.bench-venv`` (their pins clash with the
  project's lock) running bench/_quality_baselines.py.

Every system optimises the primary metric, which is scored here, identically for all, on the test
split: binary -> ROC AUC (higher is better), multiclass -> log loss (lower), regression -> RMSE (lower).
Wall time is the fit call alone (no interpreter start, imports or ``ray.init``); over budget means
wall > 1.1 x budget.

Repeatable figures (to compare two versions of the code on a busy machine):
``--systems project --num-samples 12 --max-concurrent 1 --preserve-order --time-budget 3600`` — a fixed
number of trials, one at a time (the seeded searcher and ASHA then see the same results in the same
order), rows reaching the trials in file order (Ray Data otherwise hands blocks over as they finish, and
XGBoost's quantile sketch, CatBoost and bagging depend on row order), under a budget that never ends the
search. With the default settings the budget ends the search, so how many trials run depends on the
machine's speed at that moment.

Datasets (the registry in bench/_quality_data.py): scikit-learn's bundled ones (no download):
``breast_cancer`` (binary), ``wine``, ``digits`` (multiclass), ``diabetes`` (regression); generated ones
(bench/_quality_synth.py): ``synth_binary`` (~7 % positives), ``synth_multiclass``, ``synth_regression``
with numeric, categorical, missing (some informatively) and date columns, and ``cover_multiclass`` (120k
rows, 54 features, 7 classes); and business-shaped ones (bench/_quality_business.py): ``merchant_fraud``
(200k rows, ~4 % positives, a 5,000-level merchant column, missing values, dates), ``customer_churn``
(~3 % positives, skewed amounts, two id columns unique per row) and ``insurance_claims`` (a heavy-tailed
cost, a policy id). Id columns carry no signal: a system should neither gain from them nor fail on them.
Scoring: bench/_quality_score.py.

The last line is one JSON object (its figures computed in bench/_quality_report.py): ``ratio`` = mean
over datasets of the project's score relative to FLAML's, higher is better (AUC: project / FLAML; losses:
FLAML / project), ``at_least_flaml`` / ``at_least_autogluon`` (datasets where the project is at least as
good, out of ``compared_flaml`` / ``compared_autogluon``), ``n`` (datasets), ``ratio_vs_autogluon``,
``max_over_budget`` (per system: its longest fit's wall time ÷ budget − 1), ``over_budget`` (true when
any fit took more than 1.1 x budget) and ``over_budget_runs`` (which), ``failed`` (system:dataset runs
that raised), ``fit_s`` (every fit's wall time, per dataset and system) and ``datasets``: per system and
dataset, test ``scores`` (primary and secondary metrics), ``fit_s``; the project adds its trials and
phase timings, the baselines ``process_s`` (the subprocess, imports included). Run directories stay
under ``--out``; each scored run is saved there as ``SYSTEM/DATASET/scored.json``, and ``--reuse`` keeps
those scored with the same budget, cores and seed, so a stopped comparison resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _harness import emit  # noqa: E402
from _quality_data import DATASETS, DEFAULT, TARGET, write_split  # noqa: E402
from _quality_report import summarize  # noqa: E402
from _quality_score import PRIMARY, align, score  # noqa: E402

BENCH_VENV = ROOT / ".bench-venv"
BENCH_PYTHON = BENCH_VENV / "bin" / "python"
CREATE_VENV = (
    "uv venv .bench-venv --python 3.11 && "
    "UV_COMPILE_BYTECODE=1 uv pip install --python .bench-venv -r bench/quality-requirements.txt"
)
RUNNER = ROOT / "bench" / "_quality_baselines.py"
SYSTEMS = ("project", "flaml", "autogluon")


# --- systems -------------------------------------------------------------------------------------


def run_project(ds: dict, args, labels: list, test: pd.DataFrame) -> dict:
    from app.search import AutoMLEngine, RayTuneOptimizer, RayTuneSettings

    metric, _ = PRIMARY[ds["task"]]
    settings = RayTuneSettings(
        num_cpus=args.cpus,
        time_budget_s=args.time_budget,
        num_samples=args.num_samples,
        max_concurrent_trials=args.max_concurrent,
        metric=metric,
        seed=args.seed,
    )
    out_dir = args.out / "project" / ds["name"]
    engine = AutoMLEngine(RayTuneOptimizer(settings), out_dir=out_dir, track=not args.no_track)
    started = time.perf_counter()
    result = engine.fit(str(ds["train"]), target=TARGET)  # task auto-detected, as `automl fit` does
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    x_test = test.drop(columns=[TARGET])
    scores = np.asarray(result.model.predict_scores(x_test), dtype=np.float64)
    predict_s = time.perf_counter() - started
    detected = result.model.task
    if detected != ds["task"]:
        raise RuntimeError(f"task detected as {detected}, expected {ds['task']}")
    if ds["task"] != "regression":
        scores = align(scores, list(result.model.classes), labels)
    board = result.leaderboard
    status = board["status"].value_counts().to_dict() if "status" in board else {}
    families = board["family"].value_counts().to_dict() if "family" in board else {}
    return {
        "pred": scores,
        "fit_s": fit_s,
        "predict_s": predict_s,
        "chosen": result.chosen
        + (f" ({board['family'].iloc[0]})" if result.chosen == "single" and "family" in board else ""),
        "trials": len(board),
        "trial_status": {str(k): int(v) for k, v in status.items()},
        "trial_families": {str(k): int(v) for k, v in families.items()},
        "valid_score": float(result.ensemble_score if result.chosen == "ensemble" else result.best_score),
        "timings": {k: round(v, 2) for k, v in result.timings.items()},
    }


def run_baseline(system: str, ds: dict, args, labels: list) -> dict:
    metric, _ = PRIMARY[ds["task"]]
    work = args.out / system / ds["name"]
    work.mkdir(parents=True, exist_ok=True)
    result_file = work / "result.json"
    result_file.unlink(missing_ok=True)
    cmd = [
        str(BENCH_PYTHON),
        str(RUNNER),
        f"--system={system}",
        f"--train={ds['train']}",
        f"--test={ds['test']}",
        f"--target={TARGET}",
        f"--task={ds['task']}",
        f"--metric={metric}",
        f"--time-budget={args.time_budget}",
        f"--cpus={args.cpus}",
        f"--seed={args.seed}",
        f"--work={work}",
        f"--out={result_file}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.cpus), "PYTHONPATH": ""}
    env.pop("VIRTUAL_ENV", None)
    started = time.perf_counter()
    with open(work / "log.txt", "w") as log:
        proc = subprocess.run(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(work),
            timeout=3 * args.time_budget + 300,
            check=False,
        )
    process_s = time.perf_counter() - started
    if proc.returncode != 0 or not result_file.exists():
        tail = (work / "log.txt").read_text()[-2000:]
        raise RuntimeError(f"{system} exited with {proc.returncode}; log {work / 'log.txt'}:\n{tail}")
    info = json.loads(result_file.read_text())
    frame = pd.read_parquet(info.pop("predictions"))
    if ds["task"] == "regression":
        pred = frame["prediction"].to_numpy(dtype=np.float64)
    else:
        pred = align(frame.to_numpy(dtype=np.float64), info["classes"], labels)
    return {"pred": pred, "process_s": process_s, **info}


# --- main ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-budget", type=float, default=120.0, help="Seconds per system per dataset.")
    parser.add_argument(
        "--datasets",
        default=",".join(DEFAULT),
        help=f"Comma list of {', '.join(d.name for d in DATASETS)} (default: all but wine).",
    )
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="Comma list of project,flaml,autogluon.")
    parser.add_argument("--cpus", type=int, default=2, help="Cores every system gets.")
    parser.add_argument(
        "--num-samples",
        type=int,
        default=None,
        help="Project: trial cap (default none: the budget ends the search, as in `automl fit`).",
    )
    parser.add_argument(
        "--max-concurrent",
        type=int,
        default=None,
        help="Project: trials at once (default: one per core); 1 with --num-samples makes it repeatable.",
    )
    parser.add_argument(
        "--preserve-order",
        action="store_true",
        help="Project: Ray Data keeps the files' row order (blocks otherwise arrive as they finish).",
    )
    parser.add_argument("--no-track", action="store_true", help="Project: no MLflow tracking in the fit.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "quality")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="Keep the scored runs already under --out (same budget, cores and seed); run only the rest.",
    )
    args = parser.parse_args()

    names = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = [d for d in names if d not in {ds.name for ds in DATASETS}]
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    if unknown or not names:
        parser.error(f"unknown datasets {unknown}; choose from {', '.join(d.name for d in DATASETS)}")
    if set(systems) - set(SYSTEMS) or not systems:
        parser.error(f"--systems must be a subset of {','.join(SYSTEMS)}")
    if any(s != "project" for s in systems) and not BENCH_PYTHON.exists():
        sys.exit(
            f"error: the baselines' environment {BENCH_VENV} is missing (FLAML and AutoGluon live there, "
            f"outside the project's lock). Create it from the repository root with:\n  {CREATE_VENV}"
        )
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)

    splits = [write_split(n, args.out, args.seed) for n in names]
    results: dict[str, dict[str, dict]] = {ds["name"]: {} for ds in splits}
    tests = {ds["name"]: pd.read_parquet(ds["test"]) for ds in splits}
    labels = {
        ds["name"]: sorted(pd.read_parquet(ds["train"], columns=[TARGET])[TARGET].unique().tolist())
        if ds["task"] != "regression"
        else []
        for ds in splits
    }

    def scored_file(system: str, ds: dict) -> Path:
        return args.out / system / ds["name"] / "scored.json"

    def reused(system: str, ds: dict) -> bool:
        # A run is kept only when it was scored under the same conditions: an hour-long comparison can
        # then be stopped and resumed, or run one system at a time, without mixing budgets.
        path = scored_file(system, ds)
        if not args.reuse or not path.is_file():
            return False
        saved = json.loads(path.read_text())
        if saved.get("conditions") != conditions:
            return False
        results[ds["name"]][system] = saved["result"]
        print(f"[{system}] {ds['name']}: reused {path}", flush=True)
        return True

    conditions = {"time_budget_s": args.time_budget, "cpus": args.cpus, "seed": args.seed}

    def record(system: str, ds: dict, fn) -> None:
        name = ds["name"]
        print(f"[{system}] {name} ({ds['task']}, {ds['rows']:,} rows) ...", flush=True)
        try:
            out = fn()
        except Exception as exc:  # noqa: BLE001 - one failure is a result, not the end of the benchmark
            print(f"[{system}] {name} FAILED: {exc}", flush=True)
            results[name][system] = {"error": str(exc)[:500]}
            return
        y = tests[name][TARGET].to_numpy()
        out["scores"] = score(ds["task"], y, labels[name], out.pop("pred"))
        results[name][system] = out
        scored_file(system, ds).parent.mkdir(parents=True, exist_ok=True)
        scored_file(system, ds).write_text(
            json.dumps({"conditions": conditions, "result": out}, indent=2, default=float)
        )
        metric, _ = PRIMARY[ds["task"]]
        print(
            f"[{system}] {name}: {metric}={out['scores'][metric]:.5f} fit {out['fit_s']:.1f} s "
            f"({out.get('chosen')})",
            flush=True,
        )

    todo = {system: [ds for ds in splits if not reused(system, ds)] for system in systems}
    if todo.get("project"):
        os.environ.pop("RAY_ADDRESS", None)  # a local Ray with --cpus cores, never a shared cluster
        import ray

        started = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        from ray.data import DataContext

        DataContext.get_current().enable_progress_bars = False
        DataContext.get_current().execution_options.preserve_order = args.preserve_order
        print(f"ray.init: {time.perf_counter() - started:.1f} s (not counted)", flush=True)
        try:
            for ds in todo["project"]:
                record(
                    "project", ds, lambda ds=ds: run_project(ds, args, labels[ds["name"]], tests[ds["name"]])
                )
        finally:
            ray.shutdown()
    for system in systems:
        if system != "project":
            for ds in todo[system]:
                record(
                    system,
                    ds,
                    lambda ds=ds, system=system: run_baseline(system, ds, args, labels[ds["name"]]),
                )

    figures = summarize(splits, results, systems, args.time_budget)
    (args.out / "results.json").write_text(json.dumps(figures["datasets"], indent=2, default=float))
    emit("quality", time_budget_s=args.time_budget, cpus=args.cpus, **figures)


if __name__ == "__main__":
    main()
