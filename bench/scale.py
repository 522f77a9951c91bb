"""Search at scale: ``automl fit`` on millions of rows (the row ladder, ``app.search.ladder``) beside
FLAML and beside the project's own search without the ladder ("defaults on every row"), same budget.

    .venv/bin/python bench/scale.py [--sizes 1000000,6000000,24000000] [--budget 300] [--cpus 2]
        [--systems project,all_rows,flaml] [--flaml-max-rows 6000000] [--all-rows-at 1000000,6000000]
        [--streaming-from 24000000] [--out bench/out/scale] [--reuse]

The data: a binary task of 20 numeric features, 10 of them informative through interactions,
thresholds and curves, 10 noise, with label noise (``make_rows``); each size written as 12 Parquet
files, and one test split of 200,000 rows of the same distribution for every size.

Runs (each a fresh process, as a user runs it; ``bench/quality.py`` runs and scores them):
* ``project``: ``automl fit DIR --target target --time-budget B --metric auc`` with the CLI's defaults
  (the ladder turns itself on from 500,000 training rows); at ``--streaming-from`` rows and above,
  with ``search.in_memory_limit_bytes`` below the data, so the data goes the streaming way;
* ``all_rows``: the same with ``search.row_ladder=false``, at the ``--all-rows-at`` sizes;
* ``flaml``: FLAML (lgbm, xgboost, catboost) on the same files in its own environment (``.bench-venv``),
  at sizes up to ``--flaml-max-rows``.

Per run: configurations tried, test AUC, wall seconds of the process against the budget, peak memory
of the driver (its high-water mark) and of its process tree (Ray's workers, proportional set sizes).
The last line: ``ratio`` = project AUC / FLAML AUC at 6M rows (null when FLAML did not finish within
``bench/quality.py``'s timeout, 3 x budget + 300 s: then in ``failed``), ``ratio_1m``, ``trials_6m``,
``over_budget_max`` (over every finished run of every system), ``rss_ratio_24m_6m`` (project's tree
peak), ``ladder_vs_all_rows_6m``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import quality  # noqa: E402
from _harness import emit, report  # noqa: E402
from _quality_data import TARGET  # noqa: E402
from _quality_score import score  # noqa: E402

FEATURES = 20
FILES = 12
TEST_ROWS = 200_000


def make_rows(n: int, seed: int) -> pd.DataFrame:
    """``n`` rows of the task: what decides the class is a sum of interactions, a threshold, curves and
    a linear part over ``x0``..``x9`` (``x10``..``x19`` are noise), through a logistic link."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, FEATURES)).astype(np.float32)
    z = (
        0.8 * x[:, 0]
        - 0.6 * x[:, 1]
        + 0.7 * x[:, 2] * x[:, 3]
        + np.sin(2.0 * x[:, 4])
        + 0.8 * (x[:, 5] > 0.5) * x[:, 6]
        + 0.5 * np.abs(x[:, 7])
        - 0.4 * x[:, 8] ** 2
        + 0.4 * x[:, 9] * x[:, 0]
    )
    y = rng.random(n) < 1.0 / (1.0 + np.exp(-(z - 0.1)))
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(FEATURES)])
    frame[TARGET] = y.astype(np.int64)
    return frame


def write_size(rows: int, out: Path) -> Path:
    """The ``rows``-row training set as ``FILES`` Parquet files (written once, chunk by chunk)."""
    folder = out / "data" / f"rows{rows}"
    done = folder / "_complete"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    per = -(-rows // FILES)
    for i in range(FILES):
        n = min(per, rows - i * per)
        make_rows(n, seed=1_000 + i).to_parquet(folder / f"part-{i:02d}.parquet", index=False)
    done.write_text(str(rows))
    return folder


def write_test(out: Path) -> Path:
    path = out / "data" / "test.parquet"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        make_rows(TEST_ROWS, seed=7).to_parquet(path, index=False)
    return path


def run_one(system: str, rows: int, args, *, train: Path, test_path: Path, test: pd.DataFrame) -> dict:
    """One run, scored, saved as ``scored.json`` in its directory (read back with ``--reuse``)."""
    work = args.out / "runs" / f"{system}-rows{rows}"
    scored = work / "scored.json"
    if args.reuse and scored.exists():
        return json.loads(scored.read_text())
    work.mkdir(parents=True, exist_ok=True)
    ds = {"name": f"scale{rows}", "task": "binary", "train": train, "test": test_path, "rows": rows}
    extra: dict[str, dict] = {}
    if system == "all_rows":
        extra = {"search": {"row_ladder": False}}
    elif system == "project" and rows >= args.streaming_from:
        # Below the encoded data (4 bytes a value): the data is read as a stream, as if over memory.
        extra = {"search": {"in_memory_limit_bytes": rows * (FEATURES + 1) * 4 // 4}}
    run_args = argparse.Namespace(cpus=args.cpus, max_concurrent=None, num_samples=None, project_config=extra)
    print(f"[{system}] {rows:,} rows, {args.budget:g} s ...", flush=True)
    if system == "flaml":
        out = quality.run_baseline("flaml", ds, run_args, [0, 1], budget=args.budget, seed=0, work=work)
        trials = _flaml_trials(work)
    else:
        out = quality.run_project(ds, run_args, [0, 1], test, budget=args.budget, seed=0, work=work)
        trials = out["trials"]
    result = {
        "system": system,
        "rows": rows,
        "budget_s": args.budget,
        "auc": score("binary", test[TARGET].to_numpy(), [0, 1], out.pop("pred"))["auc"],
        "trials": trials,
        "wall_s": round(out["wall_s"], 1),
        "over_budget": round(out["wall_s"] / args.budget - 1.0, 4),
        "driver_peak_gb": round(out.get("driver_peak_bytes", 0) / 1e9, 2),
        "tree_peak_gb": round(out.get("tree_peak_bytes", 0) / 1e9, 2),
        "chosen": out.get("chosen"),
        "row_ladder": out.get("row_ladder"),
        "machine": quality.MACHINE,
    }
    scored.write_text(json.dumps(result, indent=2, default=float))
    return result


def _flaml_trials(work: Path) -> int | None:
    """Configurations FLAML tried: the records of its search log."""
    log = work / "flaml.log"
    if not log.exists():
        return None
    return sum(1 for line in log.read_text().splitlines() if line.strip().startswith("{"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000000,6000000,24000000")
    parser.add_argument("--budget", type=float, default=300.0)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--systems", default="project,all_rows,flaml")
    parser.add_argument("--flaml-max-rows", type=int, default=6_000_000)
    parser.add_argument("--all-rows-at", default="1000000,6000000", help="Sizes of the all_rows runs.")
    parser.add_argument("--streaming-from", type=int, default=24_000_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "scale")
    parser.add_argument("--reuse", action="store_true", help="Keep the scored runs already under --out.")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    all_rows_at = {int(s) for s in args.all_rows_at.split(",") if s}
    systems = [s for s in args.systems.split(",") if s]
    unknown = set(systems) - {"project", "all_rows", "flaml"}
    if unknown:
        parser.error(f"--systems: unknown {sorted(unknown)}; choose from project, all_rows, flaml")
    if "flaml" in systems and not quality.BENCH_PYTHON.exists():
        parser.error(f"FLAML's environment is missing; create it with: {quality.CREATE_VENV}")

    started = time.perf_counter()
    test_path = write_test(args.out)
    test = pd.read_parquet(test_path)
    results: dict[tuple[str, int], dict] = {}
    failed: dict[tuple[str, int], str] = {}  # e.g. a run past bench/quality.py's timeout (3 x budget + 300 s)
    for rows in sizes:
        train = write_size(rows, args.out)
        for system in systems:
            if (system == "flaml" and rows > args.flaml_max_rows) or (
                system == "all_rows" and rows not in all_rows_at
            ):
                continue
            try:
                r = run_one(system, rows, args, train=train, test_path=test_path, test=test)
            except Exception as exc:  # noqa: BLE001 - one failed run is a result, not the end of the bench
                print(f"[{system}] {rows:,} rows FAILED: {exc}", flush=True)
                failed[(system, rows)] = str(exc)[:300]
                continue
            results[(system, rows)] = r
            report(
                f"{system} {rows:,} rows",
                auc=r["auc"],
                trials=r["trials"],
                wall_s=r["wall_s"],
                tree_peak_gb=r["tree_peak_gb"],
                driver_peak_gb=r["driver_peak_gb"],
            )

    def get(system: str, rows: int, key: str):
        return results.get((system, rows), {}).get(key)

    six, big = 6_000_000, max(sizes)
    project_6m, flaml_6m = get("project", six, "auc"), get("flaml", six, "auc")
    project_1m, flaml_1m = get("project", 1_000_000, "auc"), get("flaml", 1_000_000, "auc")
    rss_6m, rss_big = get("project", six, "tree_peak_gb"), get("project", big, "tree_peak_gb")
    all_rows_6m = get("all_rows", six, "auc")
    emit(
        "scale",
        ratio=project_6m / flaml_6m if project_6m and flaml_6m else float("nan"),
        trials_6m=get("project", six, "trials"),
        over_budget_max=max((r["over_budget"] for r in results.values()), default=None),
        rss_ratio_24m_6m=rss_big / rss_6m if rss_big and rss_6m and big != six else None,
        ladder_vs_all_rows_6m=project_6m / all_rows_6m if project_6m and all_rows_6m else None,
        ratio_1m=project_1m / flaml_1m if project_1m and flaml_1m else None,
        failed=[{"system": s, "rows": n, "error": e} for (s, n), e in failed.items()],
        runs=[
            {k: r[k] for k in ("system", "rows", "auc", "trials", "wall_s", "over_budget", "tree_peak_gb")}
            for r in results.values()
        ],
        seconds=round(time.perf_counter() - started, 1),
    )


if __name__ == "__main__":
    main()
