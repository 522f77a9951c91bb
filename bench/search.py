"""Search benchmark: (a) Tune overhead over >=100 short trials, (b) ASHA+Optuna vs FIFO+random.

    python bench/search.py [--trials 100] [--trial-rows 50000] [--trial-rounds 150] [--plain-trials N]
                           [--tiny-trials 100] [--rows 5000] [--compare-trials 60] [--compare-seeds 3]
                           [--compare-rows 20000]

(a) runs the project's search (``reuse_actors=True``, data shared once through the object store,
trials reporting per ``tuner.ReportCadence``) and, as the plain way, the same trials with Tune's
defaults (``reuse_actors=False``), 2 trials at a time on 2 CPUs. The trials are shaped like Ray's own
release test of Tune's bookkeeping overhead (trials of about a second): LightGBM, ``--trial-rounds``
rounds on ``--trial-rows`` rows. Overhead = wall time ÷ ideal - 1, with ideal = sum of the trials' own
times (Tune's ``time_total_s``) ÷ concurrency; ``work_overhead`` uses the stricter ideal of the
project's trial configurations trained one after another in one process without Tune
(``train_local``), ÷ 2 cores. ``--tiny-trials`` repeats the project's run (not the plain one: ~3 s per
trial there) with 30-round trials on ``--rows`` rows (a few hundredths of a second each), where Tune's
fixed start (a process importing ``ray.tune`` per concurrent trial slot) and per-trial cost dominate.
(b) runs both searchers at equal trial count on ``--compare-rows`` rows, once per searcher seed
(``--compare-seeds``): best validation logloss and total boosting rounds used, per seed and averaged.
(The best of 30 trials on 5,000 rows moved by ±1.5% with the seed, three times the 0.5% being judged:
60 trials and a 4,000-row validation split make the comparison mean something, at ~10 minutes.)
The last line's ``ratio`` is ideal ÷ project wall time of (a) (1.0 = no overhead).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import emit, report  # noqa: E402


def run(data, settings, spec, *, reuse: bool, max_concurrent: int):
    from app.search.tuner import make_tuner

    tuner = make_tuner(
        data,
        settings,
        spec,
        storage_path=tempfile.mkdtemp(prefix="bench-search-"),
        n_rows=len(data.y_train),
        n_features=data.x_train.shape[1],
        time_budget_s=None,
        max_concurrent=max_concurrent,
        reuse_actors=reuse,
    )
    started = time.perf_counter()
    results = tuner.fit()
    wall = time.perf_counter() - started
    frames = [r.metrics_dataframe for r in results]
    trial_s = sum(float(r.metrics.get("time_total_s", 0.0)) for r in results)
    rounds = sum(int(f["rounds"].max()) for f in frames if f is not None and "rounds" in f)
    scores = [float(f["score"].min()) for f in frames if f is not None and "score" in f]
    return {
        "configs": [r.config for r in results],
        "wall_s": wall,
        "trial_s": trial_s,
        # Seconds inside the boosting library (``train_local``), summed over trials.
        "train_s": sum(float(r.metrics.get("train_s", 0.0)) for r in results),
        "ideal_s": trial_s / max_concurrent,
        "overhead": wall / (trial_s / max_concurrent) - 1,
        "rounds": rounds,
        "best": min(scores),
        "trials": len(results),
    }


def sequential_work(data, configs, settings) -> float:
    """Seconds to train ``configs`` one after another in this process, without Tune."""
    from app.search.inprocess import train_local
    from app.search.spaces import split_config

    started = time.perf_counter()
    for config in configs:
        family, params = split_config(config)
        train_local(
            family,
            params,
            data,
            metric="logloss",
            num_boost_round=settings.max_rounds,
            early_stopping_rounds=settings.early_stopping_rounds,
            threads=1,
        )
    return time.perf_counter() - started


def trial_data(rows: int):
    """Encoded in-memory splits of ``rows`` generated binary rows (the project's trial data)."""
    from app.data import DatasetSpec, prepare
    from app.data.synthetic import make_frame, write_parquet
    from app.search.inprocess import TrialData

    work = Path(tempfile.mkdtemp(prefix="bench-search-data-"))
    write_parquet(make_frame(rows, task="binary", seed=3), work, files=2)
    prepared = prepare(DatasetSpec(uri=str(work), target="y"))
    return TrialData.from_datasets(prepared.splits.train, prepared.splits.valid, prepared.preprocessor)


def _shown(figures: dict) -> dict:
    return {k: v for k, v in figures.items() if k != "configs"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--trial-rows", type=int, default=50_000)
    parser.add_argument("--trial-rounds", type=int, default=150)
    parser.add_argument(
        "--plain-trials",
        type=int,
        default=None,
        help="trials of the plain Tune-defaults run (default: --trials; ~4.5 s each there; 0 skips it)",
    )
    parser.add_argument("--tiny-trials", type=int, default=100, help="0 skips the tiny-trial run")
    parser.add_argument("--compare-trials", type=int, default=60, help="0 skips ASHA vs FIFO")
    parser.add_argument(
        "--compare-seeds", type=int, default=3, help="ASHA vs FIFO pairs, one per searcher seed"
    )
    parser.add_argument("--rows", type=int, default=5000, help="rows of the tiny-trial data")
    parser.add_argument("--compare-rows", type=int, default=20_000, help="rows of the ASHA vs FIFO data")
    args = parser.parse_args()

    import ray

    from app.search.settings import RayTuneSettings
    from app.search.tuner import search_spec

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    data = trial_data(args.trial_rows)
    small = trial_data(args.rows) if args.tiny_trials else None

    def overhead_settings(trials: int, rounds: int) -> RayTuneSettings:
        return RayTuneSettings(
            num_samples=trials,
            scheduler="fifo",
            search_algorithm="random",
            families=["lightgbm"],
            max_rounds=rounds,
            report_every=10,
            early_stopping_rounds=rounds,
        )

    short = overhead_settings(args.trials, args.trial_rounds)
    spec = search_spec(short, "binary")
    project = run(data, short, spec, reuse=True, max_concurrent=2)
    report("tune overhead: project", **_shown(project))
    work_s = sequential_work(data, project["configs"], short)
    report("same trials, one process, no Tune", work_s=work_s, ideal_2_cores_s=work_s / 2)
    figures = {
        "trials": args.trials,
        "trial_rows": args.trial_rows,
        "trial_rounds": args.trial_rounds,
        "mean_trial_s": round(project["trial_s"] / project["trials"], 3),
        "mean_boosting_s": round(project["train_s"] / project["trials"], 3),
        "project_overhead": round(project["overhead"], 4),
        "work_s": round(work_s, 2),
        "project_work_overhead": round(project["wall_s"] / (work_s / 2) - 1, 4),
        "project_wall_s": round(project["wall_s"], 2),
    }
    plain_trials = args.trials if args.plain_trials is None else args.plain_trials
    if plain_trials:
        plain_settings = overhead_settings(plain_trials, args.trial_rounds)
        plain = run(data, plain_settings, spec, reuse=False, max_concurrent=2)
        report("tune overhead: plain Tune defaults", **_shown(plain))
        figures.update(
            plain_trials=plain["trials"],
            plain_overhead=round(plain["overhead"], 4),
            plain_wall_s=round(plain["wall_s"], 2),
        )
    if args.tiny_trials:
        tiny_settings = overhead_settings(args.tiny_trials, 30)
        tiny = run(small, tiny_settings, spec, reuse=True, max_concurrent=2)
        report("tiny trials: project", **_shown(tiny))
        tiny_work_s = sequential_work(small, tiny["configs"], tiny_settings)
        report("tiny trials, one process, no Tune", work_s=tiny_work_s)
        figures.update(
            tiny_trials=args.tiny_trials,
            tiny_mean_trial_s=round(tiny["trial_s"] / tiny["trials"], 3),
            tiny_overhead=round(tiny["overhead"], 4),
            tiny_work_overhead=round(tiny["wall_s"] / (tiny_work_s / 2) - 1, 4),
            tiny_wall_s=round(tiny["wall_s"], 2),
        )
    if args.compare_trials:
        common = {
            "num_samples": args.compare_trials,
            "max_rounds": 300,
            "report_every": 10,
            "early_stopping_rounds": 300,
        }
        compare_data = trial_data(args.compare_rows)
        pairs = (("ASHA + Optuna", "asha", "optuna"), ("FIFO + random", "fifo", "random"))
        gaps, shares, bests = [], [], []
        for seed in range(args.compare_seeds):
            runs = {}
            for label, scheduler, searcher in pairs:
                settings = RayTuneSettings(
                    scheduler=scheduler, search_algorithm=searcher, seed=seed, **common
                )
                runs[scheduler] = run(compare_data, settings, spec, reuse=True, max_concurrent=2)
                report(f"{label}, seed {seed}", **_shown(runs[scheduler]))
            asha, fifo = runs["asha"], runs["fifo"]
            bests.append((round(asha["best"], 5), round(fifo["best"], 5)))
            gaps.append(round(asha["best"] / fifo["best"] - 1, 5))
            shares.append(round(asha["rounds"] / fifo["rounds"], 4))
        figures.update(
            compare_trials=args.compare_trials,
            compare_rows=args.compare_rows,
            compare_seeds=args.compare_seeds,
            asha_fifo_best=bests,
            asha_vs_fifo_score_gap=gaps,
            asha_rounds_share=shares,
            mean_score_gap=round(sum(gaps) / len(gaps), 5),
            worst_score_gap=max(gaps),
            mean_rounds_share=round(sum(shares) / len(shares), 4),
        )
    ray.shutdown()
    emit("search", ratio=project["ideal_s"] / project["wall_s"], **figures)


if __name__ == "__main__":
    main()
