"""``AutoMLEngine.fit``: data in (pandas, numpy, a Ray Dataset, a path or ``s3://`` URI), a searched,
ensembled model out, with the leaderboard and every artifact under one run directory.

A fit is plan (read and size the data) -> search (Ray Tune) -> choose (``app.search.choose``) -> refit
(``app.search.refit``) -> record (leaderboard, ``fit.json``, MLflow).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from app.config import DataConfig, TrackingConfig
from app.data import DatasetSpec, PreparedData, prepare
from app.data.io import inspect
from app.search import budget, fallback, interrupt, leaderboard
from app.search.choose import choose_model
from app.search.inprocess import TrialData, ValidRows
from app.search.inputs import dataset_spec
from app.search.raytrain import StreamingData, plan, streaming_data
from app.search.records import CVRecord, FitResult, RefitRecord, SearchRecord, TrackingRecord, search_record
from app.search.refit import refit_chosen
from app.search.settings import RayTuneSettings
from app.search.state import (
    FIT_FILE,
    MODEL_DIR,
    VALIDATED_DIR,
    note_data,
    record_result,
    save_prediction_reference,
)
from app.search.tuner import SearchSpec, ended_early, make_tuner, restore_tuner, search_spec, storage_for

__all__ = ["FIT_FILE", "MODEL_DIR", "VALIDATED_DIR", "AutoMLEngine", "FitResult", "RayTuneOptimizer"]

INTERRUPTED = "interrupted (Ctrl-C)"


@dataclass
class _Plan:
    """What the search runs on: the prepared data, the trials' data and the validation rows the model is
    chosen on, the metric, and how many trials run at once."""

    settings: RayTuneSettings
    prepared: PreparedData
    data: TrialData | StreamingData
    valid: ValidRows
    sspec: SearchSpec
    cpus: float
    max_concurrent: int
    n_rows: int
    n_features: int
    timings: dict[str, float] = field(default_factory=dict)
    warm: tuple[Any, Any] | None = None
    ladder: list[int] | None = None  # the row ladder's rungs (app.search.ladder), when on
    # Over the memory limit with a ladder, ``data`` is a sample and this every row (the chosen model's).
    streaming: StreamingData | None = None
    search: SearchRecord | None = None


class RayTuneOptimizer:
    """Runs the search on the connected Ray cluster with ``RayTuneSettings``."""

    def __init__(self, settings: RayTuneSettings | None = None, **kwargs: Any) -> None:
        self.settings = settings or RayTuneSettings(**kwargs)

    def connect(self) -> None:
        import ray

        if ray.is_initialized():
            return
        from app.cluster import connect
        from app.config import RayConfig

        s = self.settings
        num_cpus = None if s.num_cpus in (None, -1) else s.num_cpus
        connect(RayConfig(address=s.ray_address, num_cpus=num_cpus, num_gpus=s.num_gpus))


class AutoMLEngine:
    """Fit the best model for a tabular dataset.

    Example:
        >>> engine = AutoMLEngine(RayTuneOptimizer(RayTuneSettings(num_samples=20, time_budget_s=120)))
        >>> result = engine.fit(X_train, y_train)  # doctest: +SKIP
        >>> result.model.predict(X_test)  # doctest: +SKIP
    """

    def __init__(
        self,
        optimizer: RayTuneOptimizer | None = None,
        *,
        out_dir: str | Path = "runs/automl",
        data_config: DataConfig | None = None,
        tracking: TrackingConfig | None = None,
        track: bool = True,
        notify: Callable[[str], None] | None = None,
        progress: Callable[..., None] | None = None,
        started: float | None = None,
    ) -> None:
        """``started`` (``time.monotonic()``): when the time budget began (default: the call to ``fit``
        or ``resume``; the CLI gives its process's start). ``notify`` receives what the user should
        know about the data as it is used (rows dropped); default: a logging warning.
        ``progress(stage, text, final=True)`` receives one line per stage and the search's
        progress (``final=False``); with it, Tune prints nothing of its own."""
        self.notify = notify or logging.getLogger(__name__).warning
        self.progress = progress
        self.optimizer = optimizer or RayTuneOptimizer()
        self.out_dir = Path(out_dir)
        self.data_config = data_config or DataConfig()
        self.tracking = tracking or TrackingConfig()
        self.track = track
        self.started = started

    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        target: str | None = None,
        task: str | None = None,
        spec: DatasetSpec | None = None,
    ) -> FitResult:
        """Search, ensemble and save. ``X`` is pandas/numpy (with ``y``), a Ray Dataset, a path or URI."""
        started = self.started or time.monotonic()
        spec = spec or dataset_spec(X, y, target, out_dir=self.out_dir, s3=self.data_config.s3)
        # Fail on bad input before Ray starts and before anything in an existing run folder changes.
        inspect(spec)
        self.optimizer.connect()
        with interrupt.catching_sigint():
            return self._run(spec, task=task, resume=False, started=started)

    def resume(self) -> FitResult:
        """Continue the search saved under ``out_dir``; finished trials are kept."""
        started = self.started or time.monotonic()
        path = self.out_dir / FIT_FILE
        if not path.exists():
            raise FileNotFoundError(f"{path}: no fit to resume in {self.out_dir}")
        # The search continues as saved; where Ray runs is where it runs now, when that is given.
        where = self.optimizer.settings.model_dump(include={"ray_address", "num_cpus", "num_gpus"})
        try:
            saved = json.loads(path.read_text())
            saved_settings = {**saved["settings"], **{k: v for k, v in where.items() if v is not None}}
            settings, spec = RayTuneSettings(**saved_settings), DatasetSpec(**saved["spec"])
        except (ValueError, KeyError, TypeError) as exc:
            reason = " ".join(str(exc).split())
            raise ValueError(
                f"{path}: not a fit record to resume from ({type(exc).__name__}: {reason})"
            ) from None
        inspect(spec)
        self.optimizer.settings = settings
        self.optimizer.connect()
        with interrupt.catching_sigint():
            return self._run(spec, task=saved.get("task"), resume=True, started=started)

    def _run(self, spec: DatasetSpec, *, task: str | None, resume: bool, started: float) -> FitResult:
        """Plan -> search -> choose -> refit -> record. After Ctrl-C the best trials are kept as they are:
        no cross-validation, refit or tracking."""
        from app.cluster import node_cpus, require_shared_storage

        # Trials on several nodes checkpoint from each: refused now, not at the first checkpoint.
        require_shared_storage(
            storage_for(self.out_dir, self.optimizer.settings), field="search.storage_path"
        )
        p = self._plan(spec, task=task, resume=resume, started=started)
        if self.progress:
            self.progress("data", f"{p.n_rows:,} training rows, {p.n_features} features, task {p.sspec.task}")
        board = self._search(p, resume=resume, started=started)
        if self.progress:
            from app.search.progress import search_line

            self.progress("search", search_line(board, p.sspec.metric))
        deadline = budget.after_search_deadline(
            p.settings, started=started, trials=len(board), track=self.track
        )
        t0 = time.monotonic()
        stopping = interrupt.requested()
        result = choose_model(
            board,
            p.valid,
            p.sspec,
            p.settings,
            data=None if stopping else p.data,
            deadline=deadline,
            cpus=p.cpus,
            out_dir=self.out_dir,
        )
        p.timings["ensemble_s"] = time.monotonic() - t0
        t0 = time.monotonic()
        if interrupt.requested():
            result.refit = RefitRecord(done=False, reason=INTERRUPTED)
            result.cv = CVRecord(done=False, reason=INTERRUPTED) if stopping else result.cv
        else:
            result.refit = refit_chosen(
                result,
                board,
                p.data,
                p.sspec,
                p.settings,
                threads=int(min(p.cpus, node_cpus())),
                deadline=deadline,
                out_dir=self.out_dir,
                every_row=p.streaming,
            )
        p.timings["refit_s"] = time.monotonic() - t0
        return self._record(result, board, p, started=started)

    def _plan(self, spec: DatasetSpec, *, task: str | None, resume: bool, started: float) -> _Plan:
        """Prepare the data and size the search: trials in process on shared arrays, or on Ray Train from
        the streaming splits when the encoded data is over ``in_memory_limit_bytes``. With a row ladder
        (``app.search.ladder``) trials train in process on prefixes of a stratified order of the rows; over
        the memory limit, on a sample of what fits, and the chosen model then on every row on Ray Train."""
        import ray

        from app.search.ladder import ladder_for, on_ladder, rungs  # imports Ray Tune

        settings = self.optimizer.settings
        prepared = prepare(spec, config=self.data_config, task=task)
        if not resume:  # the data is valid: only now does the new fit replace an earlier one's record
            note_data(self.out_dir, spec, self.optimizer.settings, task, prepared, notify=self.notify)
        pre = prepared.preprocessor
        cpus = ray.cluster_resources().get("CPU", 1.0)
        ladder, streaming = None, None
        in_process = settings.max_concurrent_trials or max(1, int(cpus // settings.cpus_per_trial))
        if budget.encoded_bytes(prepared, self.data_config) > settings.in_memory_limit_bytes:
            max_concurrent, worker_cpus = plan(
                cluster_cpus=cpus,
                cpus_per_trial=settings.cpus_per_trial,
                max_concurrent=settings.max_concurrent_trials,
            )
            data, valid = streaming_data(prepared, settings, self.data_config, worker_cpus=worker_cpus)
            n_rows, n_features = data.n_train, data.n_features
            if ladder_for(settings, n_rows):
                streaming, max_concurrent = data, in_process
                # Folds of a sample would choose among models of the sample: no cross-validation.
                settings = settings.model_copy(update={"cv_folds": 0})
                fits = settings.in_memory_limit_bytes // (4 * (n_features + 1))
                data = TrialData.sample_of(
                    prepared.splits.train, valid, pre, fraction=min(1.0, fits / n_rows), seed=settings.seed
                )
                ladder = rungs(len(data.y_train), settings.first_rung_rows)
        else:
            max_concurrent = in_process
            data = TrialData.from_datasets(prepared.splits.train, prepared.splits.valid, pre)
            valid, n_rows, n_features = data.valid, len(data.y_train), data.x_train.shape[1]
            ladder = ladder_for(settings, n_rows)
        if ladder and len(ladder) > 1:
            data = on_ladder(data, classes=str(pre.task) != "regression", seed=settings.seed)
            valid = data.valid
        prepared.save(self.out_dir)
        return _Plan(
            ladder=ladder,
            streaming=streaming,
            settings=settings.for_rows(n_rows),
            prepared=prepared,
            data=data,
            valid=valid,
            sspec=search_spec(settings, str(pre.task)),
            cpus=cpus,
            max_concurrent=max_concurrent,
            n_rows=n_rows,
            n_features=n_features,
            timings={"data_s": time.monotonic() - started},
        )

    def _search(self, p: _Plan, *, resume: bool, started: float) -> pd.DataFrame:
        """Run (or resume) the Tune search; the leaderboard of its trials, saved (with their checkpoints)."""
        storage = storage_for(self.out_dir, p.settings)
        window = budget.search_window(
            p.settings, p.data, started=started, track=self.track, grow=p.streaming is not None
        )
        if fallback.applies(window, p.data, resume=resume):
            board, p.search, p.timings["search_s"] = fallback.first_model(p, window, out_dir=self.out_dir)
            return board
        if resume:
            tuner = restore_tuner(p.data, p.settings, p.sspec, storage_path=storage, window=window)
        else:
            tuner = make_tuner(
                p.data,
                p.settings,
                p.sspec,
                storage_path=storage,
                n_rows=p.n_rows,
                n_features=p.n_features,
                window=window,
                max_concurrent=p.max_concurrent,
                progress=self.progress,
                ladder=p.ladder,
            )
        if self.track:  # open the MLflow store while the search runs (a fresh local store takes seconds)
            from app.search.track import warm_tracker

            p.warm = warm_tracker(self.tracking, self.out_dir)
        if interrupt.requested():  # Ctrl-C while the data was prepared
            raise interrupt.FitInterrupted(
                f"stopped before the search; start it with: automl fit --resume --out {self.out_dir}"
            )
        t0 = time.monotonic()
        results = tuner.fit()
        p.timings["search_s"] = time.monotonic() - t0
        stopped, cut = ended_early(tuner)
        trial_rows = len(p.data.y_train) if isinstance(p.data, TrialData) else p.n_rows
        board = leaderboard.from_results(
            results, mode=p.sspec.mode, asha_stopped=stopped, cut=cut, all_rows=trial_rows
        )
        p.search = search_record(
            board, p.settings, window=window, seconds=p.timings["search_s"], mode=p.sspec.mode
        )
        if board.empty or board["checkpoint"].isna().all():
            if interrupt.requested():
                raise interrupt.FitInterrupted(
                    f"no trial had finished, nothing saved; resume: automl fit --resume --out {self.out_dir}"
                )
            errors = [str(r.error) for r in results if r.error is not None][:3]
            if errors or window is None or not isinstance(p.data, TrialData):
                raise RuntimeError(f"no trial gave a model; first errors: {errors or 'none'}")
            # The stages after the search have not started: their time trains the fallback.
            until = budget.after_search_deadline(
                p.settings, started=started, trials=len(board), track=self.track
            )
            board, p.search, seconds = fallback.first_model(
                p, window, out_dir=self.out_dir, searched=board, until=until
            )
            p.timings["search_s"] += seconds
            p.search["seconds"] = round(p.timings["search_s"], 3)
        leaderboard.save(board, self.out_dir)
        return board

    def _record(self, result: FitResult, board: pd.DataFrame, p: _Plan, *, started: float) -> FitResult:
        """The leaderboard with its ``refit`` column, ``fit.json``'s result, and the MLflow record."""
        result.trainer = "ray_train" if isinstance(p.data, StreamingData) else "in_process"
        result.search = p.search
        refit_ids = {m["trial_id"] for m in result.refit.get("members", [])}
        board["refit"] = board["trial_id"].isin(refit_ids)
        result.leaderboard = board.drop(columns=["checkpoint", "history"])
        leaderboard.save(board, self.out_dir)
        record_result(self.out_dir, result)
        save_prediction_reference(result, p.valid)
        if interrupt.requested():
            raise interrupt.FitInterrupted(
                f"the best model so far is saved in {result.model_dir} (not refit); resume the search with: "
                f"automl fit --resume --out {self.out_dir}"
            )
        if self.track:
            t0 = time.monotonic()
            result.tracking = self._log(result, board, p, started=started)
            p.timings["tracking_s"] = time.monotonic() - t0
            if interrupt.requested():  # Ctrl-C while tracking, which finished: say so, exit as interrupted
                raise interrupt.FitInterrupted(
                    f"Ctrl-C came while tracking; the fit had finished and is saved in {self.out_dir}"
                )
        result.wall_time_s = time.monotonic() - started
        result.timings = p.timings
        record_result(self.out_dir, result)  # with the wall time, which tracking is part of
        return result

    def _log(self, result: FitResult, board: pd.DataFrame, p: _Plan, *, started: float) -> TrackingRecord:
        """Tracking never loses a fit: whatever fails here is reported, and the model stays on disk. The
        report is left out once the time budget is spent."""
        import logging
        import warnings

        from app.search.track import log_search

        tracker = None
        if p.warm is not None:
            tracker, thread = p.warm
            thread.join()
        try:
            return log_search(
                result,
                board=board,
                prepared=p.prepared,
                settings=p.settings,
                config=self.tracking,
                run_name=self.out_dir.name,
                valid_frame=p.valid.raw.to_pandas() if p.valid.raw is not None else None,
                tracker=tracker,
                report_by=budget.report_by(p.settings, started=started),
            )
        except Exception as exc:  # noqa: BLE001 - the fit's outputs are already saved
            logging.getLogger(__name__).exception("tracking failed")
            warnings.warn(
                f"the fit finished and is saved in {self.out_dir}, but tracking failed: {exc}", stacklevel=3
            )
            return TrackingRecord(error=str(exc))
