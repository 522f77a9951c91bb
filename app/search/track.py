"""The search's MLflow record: a parent run per fit, a child run per Tune trial with its metric
history, the final model in its flavours (registered), the leaderboard, profile and the run report.

Logged after the search from Tune's results, so tracking costs the trials nothing; a tracking server
that is down leaves everything under ``RUN_DIR/mlruns-pending/`` for ``automl track sync``.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from app.search.records import TrackingRecord
from app.train.reference import REFERENCE_FILE

# The run report's least time: trials stop being logged as child runs this long before it must be done.
REPORT_MIN_S = 2.0

if TYPE_CHECKING:
    from app.config import TrackingConfig
    from app.data import PreparedData
    from app.search.engine import FitResult
    from app.search.settings import RayTuneSettings
    from app.tracking import MLflowTracker


def trial_history(row: Any, metric: str) -> tuple[list[float], str]:
    """A trial's validation metric per round from its saved model (finished trials), else per report."""
    if isinstance(row.checkpoint, str):
        meta = Path(row.checkpoint) / "metadata.json"
        if meta.exists():
            history = json.loads(meta.read_text()).get("history", {}).get(metric)
            if history:
                return [float(v) for v in history], "round"
    return [float(v) for v in json.loads(row.history or "[]")], "report"


def warm_tracker(config: TrackingConfig, run_dir: Path) -> tuple[MLflowTracker, threading.Thread]:
    """A tracker whose store is opened (a fresh local store creates its database: seconds) on a thread,
    while the search runs; a store that fails here is retried, and reported, by ``log_search``."""
    from app.tracking import MLflowTracker

    tracker = MLflowTracker(config, run_dir=run_dir)

    def connect() -> None:
        with contextlib.suppress(Exception):  # log_search retries, and reports a store that fails
            if tracker.reachable():
                tracker.experiment_id  # noqa: B018 - creates the client, the store and the experiment

    thread = threading.Thread(target=connect, name="mlflow-warmup", daemon=True)
    thread.start()
    return tracker, thread


def log_search(
    result: FitResult,
    *,
    board: pd.DataFrame,
    prepared: PreparedData,
    settings: RayTuneSettings,
    config: TrackingConfig,
    run_name: str,
    valid_frame: pd.DataFrame | None = None,
    tracker: MLflowTracker | None = None,
    report_by: float | None = None,
) -> TrackingRecord:
    """Log the whole fit; returns the parent run id, the tracking URI and what was registered.

    ``valid_frame`` is a head of the validation rows as read (read from the split when None: one more
    Ray Data run, seconds on a small machine); ``tracker`` one already connected (see ``warm_tracker``).
    Past ``report_by`` (``time.monotonic()``) the HTML report is left out (``report`` in the record says
    so): the time budget has no room for it (a longer budget builds it).

    Long on purpose: it is the ordered list of what one fit logs (params, a child run per trial,
    metrics, model, tables, report); each step is one call.
    """
    from app.tracking import MLflowTracker
    from app.tracking.report import build_report

    tracker = tracker or MLflowTracker(config, run_dir=result.out_dir)
    parent = tracker.start_run(run_name=run_name, tags={"automl.kind": "search"})
    tracker.log_params(
        {
            "families": ",".join(settings.families),
            "num_samples": settings.num_samples,
            "scheduler": settings.scheduler,
            "search_algorithm": settings.search_algorithm,
            "time_budget_s": settings.time_budget_s,
            "metric": result.metric,
            "task": prepared.preprocessor.task,
            "train_rows": prepared.profile.num_rows,
            "features": len(prepared.preprocessor.features),
            "trainer": result.trainer,
            "refit": result.refit["done"],
            "cv_folds": result.cv.get("folds", 0) if result.cv["done"] else 0,
            "bagged": result.bagging["done"],
        }
    )
    tracker.log_metrics(
        {
            f"best_{result.metric}": result.best_score,
            f"ensemble_{result.metric}": result.ensemble_score or result.best_score,
        }
    )
    valid = valid_frame if valid_frame is not None else prepared.splits.valid.limit(2000).to_pandas()
    features = prepared.preprocessor.features
    logged = tracker.log_model(result.model_dir, input_example=valid[features].head(5))
    reference = result.out_dir / REFERENCE_FILE
    tracker.log_run_artifacts(
        leaderboard=board.drop(columns=["checkpoint", "history"], errors="ignore"),
        profile=prepared.profile,
        extra={REFERENCE_FILE: json.loads(reference.read_text())} if reference.is_file() else None,
    )
    # Trials best first, each a child run, while the clock leaves room for the report's least.
    histories: dict[str, list[float]] = {}
    tracked, started = 0, time.monotonic()
    trials_by = None if report_by is None else report_by - REPORT_MIN_S
    for row in board.itertuples():
        per_trial = (time.monotonic() - started) / tracked if tracked else 0.0
        if trials_by is not None and time.monotonic() + per_trial > trials_by:
            break
        values, unit = trial_history(row, result.metric)
        tracker.log_trial(
            parent,
            row.family,
            json.loads(row.params),
            {result.metric: values},
            int(row.rounds) if pd.notna(row.rounds) else 0,  # a trial stopped before its first report
            row.status,
            metric=result.metric,
            run_name=f"trial-{row.trial_id}",
            tags={"automl.trial_id": row.trial_id, "automl.history_step": unit},
        )
        tracked += 1
        if isinstance(row.checkpoint, str) and len(histories) < 5:
            histories[f"{row.family} {row.trial_id}"] = values
    report = None
    if report_by is None or time.monotonic() < report_by:
        report = build_report(
            result.out_dir,
            # The figures are on validation rows: they describe the model chosen there, not its refit.
            model_dir=result.validated_model_dir or result.model_dir,
            valid=valid,
            leaderboard=board.drop(columns=["checkpoint", "history"], errors="ignore"),
            histories=histories,
            metric=result.metric,
            mode=result.mode,
            tracker=tracker,
            by=report_by,
            families=(result.search or {}).get("families"),
        )
    tracker.end_run("FINISHED")
    record = TrackingRecord(
        run_id=parent,
        tracking_uri=tracker.display_uri,  # fit.json and the job's summary: no password
        registered=getattr(logged, "registered_version", None) if logged else None,
    )
    if tracked < len(board):
        record["trials_logged"] = tracked
        record["trials_cut"] = (
            f"{len(board) - tracked} of {len(board)} trials not logged as child runs: no time left in the "
            "budget (every trial is in the leaderboard artifact)"
        )
    if report is None:
        record["report"] = "not built: no time left in the budget"
    elif report.cut:
        record["report"] = f"cut to fit the budget: {'; '.join(report.cut)}"
    return record
