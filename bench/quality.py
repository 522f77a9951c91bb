"""Model quality: ``automl fit`` vs FLAML and AutoGluon-Tabular (GBMs), same budget and cores, over seeds.

    uv venv .bench-venv --python 3.11 && UV_COMPILE_BYTECODE=1 uv pip install --python .bench-venv \
        -r bench/quality-requirements.txt
    .venv/bin/python bench/quality.py [--time-budgets 120,30] [--seeds 0,1,2] [--cpus 2] \
        [--systems project,flaml,autogluon] [--datasets breast_cancer,merchant_fraud,...] [--reuse]
    # a project variant beside the default runs, the peers' runs reused:
    .venv/bin/python bench/quality.py --reuse --project-label fair \\
        --project-config search.family_fairness=true
    # default: every dataset but wine; at the first budget the project runs each seed and the peers the
    # first seed; at every other budget each system runs the first seed; over two hours at 120,30

Runs. The first budget of ``--time-budgets`` is the main one: there the project runs once per seed of
``--seeds`` and FLAML and AutoGluon once, with the first seed. At every further budget (the short one)
each system runs once, with the first seed. One run at a time, dataset after dataset.

Data. A generated dataset is built once with ``--data-seed`` (default 0) and kept under
``--out``/datasets; every dataset is split once with that seed (75 % train / 25 % test, stratified for
classifiers) into Parquet files under ``--out``/splits, and every system, budget and seed reads those same
files: the seed varies a system's search, never the data, so every run is scored on the same test rows.

Systems, each with the same budget and ``--cpus`` cores:

* the project, as a user runs it: ``automl fit TRAIN.parquet --target target --time-budget B --metric M
  --out RUN --config CONFIG.yaml`` in a fresh process (the ``automl`` script next to this interpreter,
  else ``.venv/bin/automl``, else ``uv run --frozen automl``), the CLI's defaults otherwise (task
  auto-detected, tracking on). ``CONFIG.yaml`` holds ``search: {seed: N}`` (the searcher's seed), and
  ``ray: {num_cpus: C}`` only when ``--cpus`` is below this machine's cores. The process starts its own
  local Ray: its environment has no ``RAY_ADDRESS`` and sets ``RAY_USAGE_STATS_ENABLED=0`` and
  ``RAY_ENABLE_UV_RUN_RUNTIME_ENV=0``; ``--max-concurrent`` and ``--num-samples`` are passed on only
  when given here. This process never starts Ray: it loads ``RUN/model`` with ``app.train.load_model``
  and scores the test split with ``predict_scores``; ``RUN/fit.json`` and ``RUN/leaderboard.csv`` give
  the choice, the validation score, the trials by status and family and the stages' seconds;
* FLAML (``estimator_list=["lgbm", "xgboost", "catboost"]``, ``n_jobs=C``) and AutoGluon-Tabular
  restricted to its GBMs (``hyperparameters={"GBM": {}, "CAT": {}, "XGB": {}}``, ``num_cpus=C``),
  each in a subprocess of the baselines' own environment ``.bench-venv`` (their pins clash with the
  project's lock) running bench/_quality_baselines.py, which fits, then predicts the test split.

Measured. Every system optimises the primary metric, which is scored here, identically for all, on the
test split: binary -> ROC AUC (higher is better), multiclass -> log loss (lower), regression -> RMSE
(lower); secondary metrics too (bench/_quality_score.py). A run's ``wall_s`` is what the budget is held
against: for the project the whole ``automl fit`` process (interpreter start, imports, Ray's start and
stop included); for a peer its whole process less its test-split prediction (which the project does
outside its process). ``fit_s`` is the fit call alone (for the project: the engine's ``wall_time_s`` in
fit.json).

Repeatable figures (to compare two versions of the code on a busy machine): ``--systems project
--num-samples 12 --max-concurrent 1 --time-budgets 3600 --seeds 0`` — a fixed number of trials, one at a
time (the seeded searcher and ASHA then see the same results in the same order), under a budget that never
ends the search (trials in process read rows in file order already). With the defaults the budget ends
the search, so how many trials run depends on the machine's speed at that moment.

Datasets (the registry in bench/_quality_data.py): scikit-learn's bundled ones (no download):
``breast_cancer`` (binary), ``wine``, ``digits`` (multiclass), ``diabetes`` (regression); generated ones
(bench/_quality_synth.py): ``synth_binary`` (~7 % positives), ``synth_multiclass``, ``synth_regression``
with numeric, categorical, missing (some informatively) and date columns, ``cover_multiclass`` (120k
rows, 54 features, 7 classes) and ``wave_multiclass`` (150k rows, 48 numeric columns, 7 classes from
smooth non-linear scores: hundreds of boosting rounds, each 7 trees); and business-shaped ones
(bench/_quality_business.py): ``merchant_fraud`` (200k rows, ~4 % positives, a 5,000-level merchant
column, missing values, dates), ``customer_churn`` (~3 % positives, skewed amounts, two id columns unique
per row), ``insurance_claims`` (a heavy-tailed cost, a policy id) and ``ad_clicks`` (400k rows, ten
columns: numeric, categorical with a 20,000-level publisher, missing values; ~8 % positives). Id columns
carry no signal: a system should neither gain from them nor fail on them.

Output. Per budget, a table: each system's median test score over its seeds, its longest wall time, the
project against the best peer, FLAML and AutoGluon, and the project's score per seed. The last line is
one JSON object (bench/_harness.py ``emit``; figures from bench/_quality_report.py): ``ratio`` = mean
over datasets of the project's median score relative to FLAML's at the first budget (higher is better;
AUC: project / FLAML, losses: FLAML / project), ``n`` (datasets), ``time_budgets``, ``seeds``,
``peer_seed``, ``cpus``, ``data_seed``, ``over_budget`` (any run over 1.1 x its budget), ``failed`` and,
per budget, ``b<budget>`` (``b120``, ``b30``) with ``worst_ratio`` and ``worst_dataset`` per system (the
worst over datasets of its median score relative to the best peer's on that dataset, oriented so higher
is better), ``at_least_flaml`` / ``at_least_autogluon`` (datasets where the project's median is at least
as good, out of ``compared_flaml`` / ``compared_autogluon``), ``ratio_vs_flaml`` /
``ratio_vs_autogluon`` (means), ``max_over_budget`` per system (its longest ``wall_s`` over every fit and
seed ÷ budget − 1), ``over_budget_runs``, ``failed``, ``seeds`` per system and ``scores`` (median primary
score per dataset and system). ``--out``/results.json holds every run's details per budget, dataset,
system and seed (scores, wall and fit seconds, trials, choice).

Each run lives in ``--out``/SYSTEM/DATASET/b<budget>-seed<seed>/ (its log, its run directory), its scores
in ``scored.json`` there; ``--reuse`` keeps those scored under the same conditions (budget, cores, seed,
data seed; for the project also ``--num-samples`` and ``--max-concurrent``), so a stopped comparison
resumes where it stopped, and the peers' runs serve every later comparison of the project. The peers'
``scored.json`` files are also kept in the repository under bench/results/quality/ (same layout;
``--keep`` writes them there), which ``--reuse`` reads when ``--out`` has none: a fresh checkout
compares the project with the peers without running them again (their pins are in
bench/quality-requirements.txt; the files say when and on which machine they ran).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _harness import PeakMemory, emit  # noqa: E402
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
KEPT = ROOT / "bench" / "results" / "quality"
# Where and when a run was scored, written beside its scores (kept runs are read on other machines).
MACHINE = {
    "date": time.strftime("%Y-%m-%d"),
    "cores": os.cpu_count(),
    "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
}


# --- processes -----------------------------------------------------------------------------------


def scored_file(work: Path, out: Path, kept: Path = KEPT) -> Path | None:
    """A run's ``scored.json``: in its directory under ``out``, else the one kept in the repository at the
    same place under ``kept``; None when neither exists."""
    for path in (work / "scored.json", kept / work.relative_to(out) / "scored.json"):
        if path.is_file():
            return path
    return None


def _run_logged(
    cmd: list[str], *, env: dict, cwd: Path, log: Path, timeout: float, memory: dict | None = None
) -> tuple[int, float]:
    """Run ``cmd`` with its output in ``log``; its exit status and wall seconds (the whole process).
    ``memory``, when given, receives the process's peak memory (``_harness.PeakMemory``)."""
    started = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=str(cwd))
        with PeakMemory(proc.pid) if memory is not None else contextlib.nullcontext() as peak:
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
    if memory is not None:
        memory.update(driver_peak_bytes=peak.root_bytes, tree_peak_bytes=peak.tree_bytes)
    return rc, time.perf_counter() - started


def _failed(what: str, rc: int, log: Path) -> RuntimeError:
    return RuntimeError(f"{what} exited with {rc}; log {log}:\n{log.read_text()[-2000:]}")


def automl_command() -> list[str]:
    """``automl`` as installed next to this interpreter (the project's venv), else .venv's, else uv's."""
    for script in (Path(sys.executable).with_name("automl"), ROOT / ".venv" / "bin" / "automl"):
        if script.is_file():
            return [str(script)]
    return ["uv", "run", "--frozen", "--project", str(ROOT), "automl"]


def _machine_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# --- systems -------------------------------------------------------------------------------------


def run_project(
    ds: dict, args, labels: list, test: pd.DataFrame, *, budget: float, seed: int, work: Path
) -> dict:
    from app.train import load_model

    metric, _ = PRIMARY[ds["task"]]
    run_dir, config, log = work / "run", work / "config.yaml", work / "log.txt"
    config.write_text(project_config(seed, args.cpus, _machine_cpus(), args.project_config))
    cmd = [
        *automl_command(),
        "fit",
        str(ds["train"]),
        "--target",
        TARGET,
        "--time-budget",
        f"{budget:g}",
        "--metric",
        metric,
        "--out",
        str(run_dir),
        "--config",
        str(config),
    ]
    if args.max_concurrent is not None:
        cmd += ["--max-concurrent", str(args.max_concurrent)]
    if args.num_samples is not None:
        cmd += ["--num-samples", str(args.num_samples)]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"}
    env.pop("RAY_ADDRESS", None)  # its own local Ray, never a shared cluster
    memory: dict[str, int] = {}
    rc, wall_s = _run_logged(cmd, env=env, cwd=work, log=log, timeout=3 * budget + 300, memory=memory)
    if rc != 0 or not (run_dir / "model").is_dir():
        raise _failed("automl fit", rc, log)

    started = time.perf_counter()
    model = load_model(run_dir / "model")
    if model.task != ds["task"]:
        raise RuntimeError(f"task detected as {model.task}, expected {ds['task']}")
    scores = np.asarray(model.predict_scores(test.drop(columns=[TARGET])), dtype=np.float64)
    predict_s = time.perf_counter() - started
    if ds["task"] != "regression":
        scores = align(scores, list(model.classes), labels)

    result = json.loads((run_dir / "fit.json").read_text())["result"]
    board = pd.read_csv(run_dir / "leaderboard.csv")
    search = result.get("search") or {}
    chosen = result["chosen"]
    if chosen == "single" and "family" in board and len(board):
        chosen += f" ({board['family'].iloc[0]})"
    refit, cv = result.get("refit") or {}, result.get("cv") or {}
    timings = {
        "search_s": search.get("seconds"),
        "search_window_s": search.get("window_s"),
        "cv_s": cv.get("seconds") if cv.get("done") else None,
        "refit_s": sum(m["seconds"] for m in refit.get("members", [])) if refit.get("done") else None,
        "engine_s": result.get("wall_time_s"),
        "outside_engine_s": None if result.get("wall_time_s") is None else wall_s - result["wall_time_s"],
    }
    return {
        "pred": scores,
        "wall_s": wall_s,
        "fit_s": result.get("wall_time_s"),
        "predict_s": predict_s,
        "chosen": chosen,
        "trials": int(search.get("trials", len(board))),
        "trial_status": {str(k): int(v) for k, v in (search.get("statuses") or {}).items()},
        "trial_families": {str(k): int(v) for k, v in board["family"].value_counts().items()}
        if "family" in board
        else {},
        "valid_score": result["ensemble_score"] if result["chosen"] == "ensemble" else result["best_score"],
        "cv": bool(cv.get("done")),
        "refit": bool(refit.get("done")),
        "timings": {k: round(v, 2) for k, v in timings.items() if v is not None},
        "row_ladder": search.get("row_ladder"),
        **memory,
    }


def project_config(seed: int, cpus: int, machine_cpus: int, extra: dict[str, dict[str, Any]]) -> str:
    """The project's ``--config`` YAML: the searcher's seed, the peers' cores (how a user caps ``automl
    fit``'s local Ray) when below the machine's, and ``extra`` sections (``--project-config``) on top."""
    sections: dict[str, dict[str, Any]] = {"search": {"seed": seed}}
    if cpus < machine_cpus:
        sections["ray"] = {"num_cpus": cpus}
    for section, values in extra.items():
        sections.setdefault(section, {}).update(values)
    return yaml.safe_dump(sections, sort_keys=False)


def parse_settings(items: list[str], parser: argparse.ArgumentParser) -> dict[str, dict[str, Any]]:
    """``["search.family_fairness=true", ...]`` -> ``{"search": {"family_fairness": True}}`` (YAML values)."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        section, dot, name = key.partition(".")
        if not (sep and dot and section and name):
            parser.error(
                f"--project-config {item!r}: expected SECTION.KEY=VALUE, e.g. search.family_fairness=true"
            )
        out.setdefault(section, {})[name] = yaml.safe_load(value)
    return out


def run_baseline(system: str, ds: dict, args, labels: list, *, budget: float, seed: int, work: Path) -> dict:
    metric, _ = PRIMARY[ds["task"]]
    result_file, log = work / "result.json", work / "log.txt"
    cmd = [
        str(BENCH_PYTHON),
        str(RUNNER),
        f"--system={system}",
        f"--train={ds['train']}",
        f"--test={ds['test']}",
        f"--target={TARGET}",
        f"--task={ds['task']}",
        f"--metric={metric}",
        f"--time-budget={budget}",
        f"--cpus={args.cpus}",
        f"--seed={seed}",
        f"--work={work}",
        f"--out={result_file}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.cpus), "PYTHONPATH": ""}
    env.pop("VIRTUAL_ENV", None)
    memory: dict[str, int] = {}
    rc, process_s = _run_logged(cmd, env=env, cwd=work, log=log, timeout=3 * budget + 300, memory=memory)
    if rc != 0 or not result_file.exists():
        raise _failed(system, rc, log)
    info = json.loads(result_file.read_text())
    frame = pd.read_parquet(info.pop("predictions"))
    if ds["task"] == "regression":
        pred = frame["prediction"].to_numpy(dtype=np.float64)
    else:
        pred = align(frame.to_numpy(dtype=np.float64), info["classes"], labels)
    # The budget is held against the process, less the test-split prediction the project does outside its own.
    wall_s = process_s - float(info.get("predict_s") or 0.0)
    return {"pred": pred, "wall_s": wall_s, "process_s": process_s, **info, **memory}


# --- main ----------------------------------------------------------------------------------------


def _numbers(text: str, kind, what: str, parser: argparse.ArgumentParser) -> list:
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        parser.error(f"{what}: a comma list of numbers, not {text!r}")
    if not values or len(set(values)) != len(values) or any(v < 0 for v in values):
        parser.error(f"{what}: distinct non-negative values, at least one, not {text!r}")
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--time-budgets",
        "--time-budget",
        default="120,30",
        help="Comma list of seconds per fit; the first is the main budget (the project runs every seed "
        "there), each other one runs the first seed for every system (default 120,30).",
    )
    parser.add_argument(
        "--seeds",
        "--seed",
        default="0,1,2",
        help="The project's search seeds at the main budget (default 0,1,2); the peers, and every system at "
        "the other budgets, run the first one.",
    )
    parser.add_argument(
        "--data-seed", type=int, default=0, help="Seed of the generated data and of the split (fixed)."
    )
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
        help="Project: `automl fit --num-samples` (default none: the budget ends the search).",
    )
    parser.add_argument(
        "--max-concurrent",
        type=int,
        default=None,
        help="Project: `automl fit --max-concurrent` (default: the CLI's, one trial per core).",
    )
    parser.add_argument(
        "--project-config",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="A setting of the project's config file for its runs (repeatable), e.g. "
        "search.family_fairness=true; with --project-label the variant's runs sit beside the default's.",
    )
    parser.add_argument(
        "--project-label",
        default="",
        help="Keep the project's runs under --out/project-LABEL (a variant beside the default runs, the "
        "peers' runs reused with --reuse).",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "quality")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="Keep the scored runs already under --out, else under bench/results/quality (same budget, "
        "cores, seed, data seed); run the rest.",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="Also write each peer run's scored.json to bench/results/quality, to commit for later sessions.",
    )
    args = parser.parse_args()
    args.project_config = parse_settings(args.project_config, parser)

    budgets = _numbers(args.time_budgets, float, "--time-budgets", parser)
    seeds = _numbers(args.seeds, int, "--seeds", parser)
    if any(b <= 0 for b in budgets):
        parser.error("--time-budgets: every budget must be above 0")
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

    splits = [write_split(n, args.out, args.data_seed) for n in names]
    tests = {ds["name"]: pd.read_parquet(ds["test"]) for ds in splits}
    labels = {
        ds["name"]: sorted(pd.read_parquet(ds["train"], columns=[TARGET])[TARGET].unique().tolist())
        if ds["task"] != "regression"
        else []
        for ds in splits
    }
    runs: dict[float, dict[str, dict[str, dict[int, dict]]]] = {
        b: {ds["name"]: {s: {} for s in systems} for ds in splits} for b in budgets
    }

    # The plan: at the main budget the project runs every seed and the peers the first; elsewhere one seed.
    plan = [
        (budget, ds, system, seed)
        for budget in budgets
        for ds in splits
        for system in systems
        for seed in (seeds if system == "project" and budget == budgets[0] else seeds[:1])
    ]

    def work_dir(budget: float, ds: dict, system: str, seed: int) -> Path:
        folder = f"project-{args.project_label}" if system == "project" and args.project_label else system
        return args.out / folder / ds["name"] / f"b{budget:g}-seed{seed}"

    def conditions(budget: float, system: str, seed: int) -> dict:
        cond = {"time_budget_s": budget, "cpus": args.cpus, "seed": seed, "data_seed": args.data_seed}
        if system == "project":
            cond |= {"num_samples": args.num_samples, "max_concurrent": args.max_concurrent}
            if args.project_config:  # only then: runs scored before this option existed stay reusable
                cond["project_config"] = args.project_config
        return cond

    def reused(budget: float, ds: dict, system: str, seed: int) -> bool:
        # A run is kept only when it was scored under the same conditions: a comparison of hours can then
        # be stopped and resumed, or run one system at a time, without mixing budgets or seeds.
        path = scored_file(work_dir(budget, ds, system, seed), args.out)
        if not args.reuse or path is None:
            return False
        saved = json.loads(path.read_text())
        if saved.get("conditions") != conditions(budget, system, seed):
            return False
        runs[budget][ds["name"]][system][seed] = saved["result"]
        print(f"[{system}] {ds['name']} {budget:g} s seed {seed}: reused {path}", flush=True)
        return True

    def record(budget: float, ds: dict, system: str, seed: int) -> None:
        name, work = ds["name"], work_dir(budget, ds, system, seed)
        print(
            f"[{system}] {name} ({ds['task']}, {ds['rows']:,} rows) {budget:g} s seed {seed} ...", flush=True
        )
        if work.exists():
            shutil.rmtree(work)  # an unscored or differently scored run of this slot: start afresh
        work.mkdir(parents=True)
        try:
            if system == "project":
                out = run_project(ds, args, labels[name], tests[name], budget=budget, seed=seed, work=work)
            else:
                out = run_baseline(system, ds, args, labels[name], budget=budget, seed=seed, work=work)
        except Exception as exc:  # noqa: BLE001 - one failure is a result, not the end of the benchmark
            print(f"[{system}] {name} {budget:g} s seed {seed} FAILED: {exc}", flush=True)
            runs[budget][name][system][seed] = {"error": str(exc)[:500]}
            return
        out["scores"] = score(ds["task"], tests[name][TARGET].to_numpy(), labels[name], out.pop("pred"))
        runs[budget][name][system][seed] = out
        scored = {"conditions": conditions(budget, system, seed), "result": out, "machine": MACHINE}
        (work / "scored.json").write_text(json.dumps(scored, indent=2, default=float))
        if args.keep and system != "project":
            kept = KEPT / work.relative_to(args.out) / "scored.json"
            kept.parent.mkdir(parents=True, exist_ok=True)
            kept.write_text(json.dumps(scored, indent=2, default=float))
        metric, _ = PRIMARY[ds["task"]]
        print(
            f"[{system}] {name} {budget:g} s seed {seed}: {metric}={out['scores'][metric]:.5f} "
            f"wall {out['wall_s']:.1f} s ({out.get('chosen')})",
            flush=True,
        )

    todo = [step for step in plan if not reused(*step)]
    print(
        f"{len(plan)} runs, {len(plan) - len(todo)} reused, {len(todo)} to run "
        f"(~{sum(step[0] for step in todo) / 60:.0f} min of budgets)",
        flush=True,
    )
    for step in todo:
        record(*step)

    figures, details = summarize(splits, runs, systems, budgets)
    conditions_all = {
        "time_budgets": budgets,
        "seeds": seeds,
        "peer_seed": seeds[0],
        "cpus": args.cpus,
        "data_seed": args.data_seed,
        "systems": systems,
    }
    (args.out / "results.json").write_text(
        json.dumps({**conditions_all, "budgets": details}, indent=2, default=float)
    )
    emit("quality", **conditions_all, **figures)


if __name__ == "__main__":
    main()
