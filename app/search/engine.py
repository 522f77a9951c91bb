"""``AutoMLEngine.fit``: data in (pandas, numpy, a Ray Dataset, a path or ``s3://`` URI), a searched,
ensembled model out, with the leaderboard and every artifact under one run directory."""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from app import atomic
from app.config import DataConfig, TrackingConfig
from app.data import DatasetSpec, PreparedData, prepare
from app.data.io import inspect
from app.search import cv, interrupt, leaderboard
from app.search import ensemble as ens
from app.search.local import TrialData, ValidRows, encode_rows, predict_encoded
from app.search.raytrain import StreamingData, plan
from app.search.settings import RayTuneSettings
from app.search.tuner import make_tuner, restore_tuner, search_spec, storage_for
from app.train.ensemble import save_ensemble

FIT_FILE = "fit.json"
MODEL_DIR = "model"
VALIDATED_DIR = "validated_model"
# Ray Train trials choose the ensemble on at most this many validation rows (or the memory limit's worth).
ENSEMBLE_VALID_ROWS = 50_000
# Trials a timed search is expected to reach at most, for the tracking time kept from it (small data on
# 2 cores: 77-510 trials in 60 s); the stages after the search recount with the real number.
SEARCH_TRIALS_GUESS = 500
# Choosing, saving and loading the model after cross-validation (kept out of its deadline).
CHOOSE_S = 2.0
INTERRUPTED = "interrupted (Ctrl-C)"


@dataclass
class FitResult:
    """What a fit produced; ``model`` is the chosen predictor (ensemble or best single model).

    With a refit, ``model_dir`` holds the refit model(s) and ``validated_model_dir`` the same choice as
    trained in the search, which ``best_score`` and ``ensemble_score`` describe (validation scores are
    measured before the refit: after it the validation rows are training rows). ``refit`` records what
    was refit (``done``, ``reason``, and per member: rows, rounds, seconds); ``trainer`` says where the
    trials trained: ``in_process`` or ``ray_train``.

    With cross-validation (``cv["done"]``; small in-memory data, see ``RayTuneSettings.cv_folds``) the
    model and ensemble weights are chosen on out-of-fold predictions over all train + valid rows:
    ``best_score`` and ``ensemble_score`` are those cross-validation scores, the members are refit with
    their folds' mean best round count, and ``validated_model_dir`` holds the chosen members as trained
    in the search. ``cv`` records the folds, the candidates' scores and rounds, those skipped, the
    seconds, or why cross-validation did not run. ``best_trial`` is the best single model's trial.
    """

    out_dir: Path
    model_dir: Path
    leaderboard: pd.DataFrame
    model: Any
    chosen: str
    metric: str
    mode: str
    best_score: float
    ensemble_score: float | None
    ensemble_weights: dict[str, float] = field(default_factory=dict)
    validated_model_dir: Path | None = None
    refit: dict[str, Any] = field(default_factory=dict)
    cv: dict[str, Any] = field(default_factory=dict)
    best_trial: str = ""
    trainer: str = "in_process"
    wall_time_s: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    tracking: dict[str, Any] = field(default_factory=dict)


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
    ) -> None:
        """``notify`` receives what the user should know about the data as it is used (rows dropped);
        default: a logging warning."""
        self.notify = notify or logging.getLogger(__name__).warning
        self.optimizer = optimizer or RayTuneOptimizer()
        self.out_dir = Path(out_dir)
        self.data_config = data_config or DataConfig()
        self.tracking = tracking or TrackingConfig()
        self.track = track

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
        started = time.monotonic()
        spec = spec or self._spec(X, y, target)
        # Fail on bad input before Ray starts and before anything in an existing run folder changes.
        inspect(spec)
        self.optimizer.connect()
        with interrupt.catching_sigint():
            return self._run(spec, task=task, resume=False, started=started)

    def resume(self) -> FitResult:
        """Continue the search saved under ``out_dir``; finished trials are kept."""
        started = time.monotonic()
        path = self.out_dir / FIT_FILE
        if not path.exists():
            raise FileNotFoundError(f"{path}: no fit to resume in {self.out_dir}")
        try:
            saved = json.loads(path.read_text())
            settings, spec = RayTuneSettings(**saved["settings"]), DatasetSpec(**saved["spec"])
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

    def _spec(self, X: Any, y: Any, target: str | None) -> DatasetSpec:
        data_dir = self.out_dir / "data"
        if isinstance(X, str | Path) or (isinstance(X, list) and X and isinstance(X[0], str)):
            if target is None:
                raise ValueError("fit(uri, target=...) needs the target column name")
            uri = [str(u) for u in X] if isinstance(X, list) else str(X)
            return DatasetSpec(uri=uri, target=target, s3=self.data_config.s3)
        if hasattr(X, "write_parquet") and hasattr(X, "iter_batches"):  # a Ray Dataset
            if target is None:
                raise ValueError("fit(dataset, target=...) needs the target column name")
            shutil.rmtree(data_dir, ignore_errors=True)
            X.write_parquet(str(data_dir.resolve()))
            return DatasetSpec(uri=str(data_dir), target=target)
        frame = (
            X
            if isinstance(X, pd.DataFrame)
            else pd.DataFrame(np.asarray(X)).rename(columns=lambda c: f"x{c}")
        )
        if y is None:
            if target is None or target not in frame:
                raise ValueError("fit(X, y): pass y, or target= naming a column of X")
        else:
            target = target or (getattr(y, "name", None) or "target")
            if len(y) != len(frame):
                raise ValueError(f"X has {len(frame)} rows but y has {len(y)}")
            frame = frame.assign(**{target: np.asarray(y)})
        shutil.rmtree(data_dir, ignore_errors=True)
        from app.data.synthetic import write_parquet

        write_parquet(frame.reset_index(drop=True), data_dir, files=max(1, min(8, len(frame) // 50_000 or 1)))
        return DatasetSpec(uri=str(data_dir), target=target)

    def _write_fit_file(self, spec: DatasetSpec, task: str | None, *, data: dict[str, Any]) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        saved = {
            "spec": spec.model_dump(),
            "settings": self.optimizer.settings.model_dump(),
            "task": task,
            "data": data,
        }
        atomic.write_text(self.out_dir / FIT_FILE, json.dumps(saved, indent=2))

    def _run(self, spec: DatasetSpec, *, task: str | None, resume: bool, started: float) -> FitResult:
        import ray

        settings = self.optimizer.settings
        timings: dict[str, float] = {}
        prepared: PreparedData = prepare(spec, config=self.data_config, task=task)
        if not resume:  # the data is valid: only now does the new fit replace an earlier one's record
            dropped = prepared.null_target_rows()
            text_numbers = prepared.info.text_numbers
            self._write_fit_file(spec, task, data={"null_target_rows": dropped, "text_numbers": text_numbers})
            for name, markers in text_numbers.items():
                self.notify(
                    f"column {name!r} is text but holds numbers{' and ' + str(markers) if markers else ''}: "
                    "read as numbers, markers as missing values"
                )
            if dropped["rows"]:
                self.notify(
                    f"{dropped['rows']:,} of {dropped['of']:,} rows ({dropped['counted_in']}) have no "
                    f"{spec.target!r} value and are not used; recorded in {self.out_dir / FIT_FILE} "
                    "under data.null_target_rows"
                )
        pre = prepared.preprocessor
        cpus = ray.cluster_resources().get("CPU", 1.0)
        if self._encoded_bytes(prepared) > settings.in_memory_limit_bytes:
            max_concurrent, worker_cpus = plan(
                cluster_cpus=cpus,
                cpus_per_trial=settings.cpus_per_trial,
                max_concurrent=settings.max_concurrent_trials,
            )
            data, valid = self._streaming(prepared, settings, worker_cpus=worker_cpus)
            n_rows, n_features = data.n_train, data.n_features
        else:
            max_concurrent = settings.max_concurrent_trials or max(1, int(cpus // settings.cpus_per_trial))
            data = TrialData.from_datasets(prepared.splits.train, prepared.splits.valid, pre)
            valid, n_rows, n_features = data.valid, len(data.y_train), data.x_train.shape[1]
        prepared.save(self.out_dir)
        timings["data_s"] = time.monotonic() - started
        sspec = search_spec(settings, str(pre.task))
        storage = storage_for(self.out_dir, settings)
        if resume:
            tuner = restore_tuner(data, settings, sspec, storage_path=storage)
        else:
            budget = None
            if settings.time_budget_s is not None:
                # Leave time for the ensemble and saving (a tenth of the budget, at least 5 s) and for
                # logging to MLflow.
                reserve = max(5.0, 0.1 * settings.time_budget_s) + self._tracking_seconds(
                    min(settings.num_samples, SEARCH_TRIALS_GUESS)
                )
                # At least 15 s: a search that cannot finish one trial is no answer; past the budget,
                # not silently empty, is the lesser failure (the leaderboard shows the overrun).
                budget = max(15.0, settings.time_budget_s - (time.monotonic() - started) - reserve)
            tuner = make_tuner(
                data,
                settings,
                sspec,
                storage_path=storage,
                n_rows=n_rows,
                n_features=n_features,
                time_budget_s=self._search_budget(budget, data, settings),
                max_concurrent=max_concurrent,
            )
        warm = None
        if self.track:  # open the MLflow store while the search runs (a fresh local store: seconds)
            from app.search.track import warm_tracker

            warm = warm_tracker(self.tracking, self.out_dir)
        if interrupt.requested():  # Ctrl-C while the data was prepared
            raise interrupt.FitInterrupted(
                f"stopped before the search; start it with: automl fit --resume --out {self.out_dir}"
            )
        t0 = time.monotonic()
        results = tuner.fit()
        timings["search_s"] = time.monotonic() - t0
        board = leaderboard.from_results(results, mode=sspec.mode)
        if board.empty or board["checkpoint"].isna().all():
            if interrupt.requested():
                raise interrupt.FitInterrupted(
                    f"no trial had finished, nothing saved; resume: automl fit --resume --out {self.out_dir}"
                )
            errors = [str(r.error) for r in results if r.error is not None][:3]
            raise RuntimeError(
                f"no trial finished; first errors: {errors or 'none (time budget too short?)'}"
            )
        leaderboard.save(board, self.out_dir)
        # The stages after the search share what the budget leaves once tracking's share is known.
        deadline = None
        if settings.time_budget_s is not None:
            deadline = started + settings.time_budget_s - self._tracking_seconds(len(board))
        t0 = time.monotonic()
        # After Ctrl-C: the best trials as they are, no cross-validation, refit or tracking.
        stopping = interrupt.requested()
        result = self._finish(
            board, valid, sspec, settings, data=None if stopping else data, deadline=deadline, cpus=cpus
        )
        timings["ensemble_s"] = time.monotonic() - t0
        t0 = time.monotonic()
        if interrupt.requested():
            result.refit = {"done": False, "reason": INTERRUPTED}
            result.cv = {"done": False, "reason": INTERRUPTED} if stopping else result.cv
        else:
            result.refit = self._refit(
                result, board, data, sspec, settings, threads=int(cpus), deadline=deadline
            )
        timings["refit_s"] = time.monotonic() - t0
        result.trainer = "ray_train" if isinstance(data, StreamingData) else "in_process"
        refit_ids = {m["trial_id"] for m in result.refit.get("members", [])}
        board["refit"] = board["trial_id"].isin(refit_ids)
        result.leaderboard = board.drop(columns=["checkpoint", "history"])
        leaderboard.save(board, self.out_dir)
        self._record_result(result)
        if interrupt.requested():
            raise interrupt.FitInterrupted(
                f"the best model so far is saved in {result.model_dir} (not refit); resume the search with: "
                f"automl fit --resume --out {self.out_dir}"
            )
        if self.track:
            t0 = time.monotonic()
            result.tracking = self._log(result, board, prepared, settings, valid=valid, warm=warm)
            timings["tracking_s"] = time.monotonic() - t0
            if interrupt.requested():  # Ctrl-C while tracking, which finished: say so, exit as interrupted
                raise interrupt.FitInterrupted(
                    f"Ctrl-C came while tracking; the fit had finished and is saved in {self.out_dir}"
                )
        result.wall_time_s = time.monotonic() - started
        result.timings = timings
        return result

    def _tracking_seconds(self, trials: int) -> float:
        """Seconds MLflow takes after the search: ~2.5 s for the parent run, the model and the report (the
        store is opened during the search) and ~20 ms per trial's child run (a local store on this 2-core
        machine, 60 s fits: 77 trials 3.8 s, 126 trials 5.1 s, 410 trials 10.2 s, 510 trials 13.0 s)."""
        if not self.track:
            return 0.0
        return 2.5 + 0.02 * trials

    def _encoded_bytes(self, prepared: PreparedData) -> int:
        """Training plus validation rows as float32 features and label, from the training profile's row
        count and the split fractions (known before any row is read)."""
        rows = prepared.profile.num_rows + self._valid_rows(prepared.profile.num_rows)
        return int(rows * 4 * (len(prepared.preprocessor.columns) + 1))

    def _valid_rows(self, train_rows: int) -> int:
        """Validation rows expected beside ``train_rows`` training rows, from the split fractions."""
        cfg = self.data_config
        return int(train_rows * cfg.valid_fraction / max(1.0 - cfg.valid_fraction - cfg.test_fraction, 1e-9))

    def _streaming(
        self, prepared: PreparedData, settings: RayTuneSettings, *, worker_cpus: float
    ) -> tuple[StreamingData, ValidRows]:
        """Ray Train trials' data, and the validation rows the ensemble is chosen on (a bounded head)."""
        pre = prepared.preprocessor
        row_bytes = 4 * (len(pre.columns) + 1)
        cap = max(ENSEMBLE_VALID_ROWS, settings.in_memory_limit_bytes // row_bytes)
        valid = encode_rows(prepared.splits.valid, pre, max_rows=cap)
        n_train = prepared.profile.num_rows
        data = StreamingData(
            train=prepared.splits.train,
            valid=prepared.splits.valid,
            preprocessor=pre.to_dict(),
            n_train=n_train,
            n_valid=len(valid.y) if len(valid.y) < cap else self._valid_rows(n_train),
            n_features=len(pre.columns),
            worker_cpus=worker_cpus,
            threads=max(1, int(settings.cpus_per_trial)),
        )
        return data, valid

    def _log(
        self,
        result: FitResult,
        board: pd.DataFrame,
        prepared: PreparedData,
        settings,
        *,
        valid: ValidRows,
        warm: tuple[Any, Any] | None,
    ) -> dict[str, Any]:
        """Tracking never loses a fit: whatever fails here is reported, and the model stays on disk."""
        import logging
        import warnings

        from app.search.track import log_search

        tracker = None
        if warm is not None:
            tracker, thread = warm
            thread.join()
        try:
            return log_search(
                result,
                board=board,
                prepared=prepared,
                settings=settings,
                config=self.tracking,
                run_name=self.out_dir.name,
                valid_frame=valid.raw.to_pandas() if valid.raw is not None else None,
                tracker=tracker,
            )
        except Exception as exc:  # noqa: BLE001 - the fit's outputs are already saved
            logging.getLogger(__name__).exception("tracking failed")
            warnings.warn(
                f"the fit finished and is saved in {self.out_dir}, but tracking failed: {exc}", stacklevel=3
            )
            return {"error": str(exc)}

    def _search_budget(
        self, budget: float | None, data: TrialData | StreamingData, settings: RayTuneSettings
    ) -> float | None:
        """The search's time budget, less cross-validation's share when it will run."""
        if cv.folds_for(settings, data)[0] == 0:
            return budget
        return cv.search_budget(budget, time_budget_s=settings.time_budget_s)

    def _finish(
        self,
        board: pd.DataFrame,
        valid: ValidRows,
        sspec,
        settings: RayTuneSettings,
        *,
        data: TrialData | StreamingData | None = None,
        deadline: float | None = None,
        cpus: float = 1.0,
    ) -> FitResult:
        """Choose the best single model or a greedy ensemble of the best trials: on out-of-fold
        predictions over train + valid when cross-validation runs (it adds ``cv_score`` to ``board``),
        else on the validation rows."""
        run, cv_record = self._cross_validate(board, data, sspec, settings, deadline=deadline, cpus=cpus)
        members_dir = self.out_dir / "trials"
        shutil.rmtree(members_dir, ignore_errors=True)
        if run is not None:
            checkpoints = board.set_index("trial_id")["checkpoint"]
            scored = run.scored[: max(1, settings.ensemble_size)]
            dirs = [_checkout(checkpoints[c.trial_id], members_dir / c.trial_id) for c in scored]
            preds, y, w = [c.oof for c in scored], run.y, run.w
            board["cv_score"] = board["trial_id"].map({c.trial_id: c.score for c in run.scored})
        else:
            done = board[board["checkpoint"].notna()].head(max(1, settings.ensemble_size))
            dirs = [_checkout(r.checkpoint, members_dir / str(r.trial_id)) for r in done.itertuples()]
            preds, y, w = [_predict(d, valid) for d in dirs], valid.y, valid.w
        maximize = sspec.mode == "max"
        weights, ens_score = ens.select(preds, y, metric=sspec.metric, maximize=maximize, weight=w)
        best_single = ens.score(sspec.metric, y, preds[0], w)
        model_dir = self.out_dir / MODEL_DIR
        shutil.rmtree(model_dir, ignore_errors=True)
        better = ens_score > best_single if maximize else ens_score < best_single
        if settings.ensemble_size > 1 and better and (weights > 0).sum() > 1:
            member_dirs = []
            for d, wt in zip(dirs, weights, strict=True):
                if wt > 0:
                    dst = model_dir / "members" / d.name
                    shutil.copytree(d, dst)
                    member_dirs.append(dst)
            info = {
                "metric": sspec.metric,
                "mode": sspec.mode,
                "score": ens_score,
                "best_single_score": best_single,
                "task": sspec.task,
            }
            if run is not None:
                info["cv_folds"] = run.folds
            save_ensemble(member_dirs, weights[weights > 0], model_dir, info=info)
            chosen = "ensemble"
        else:
            shutil.copytree(dirs[0], model_dir)
            chosen = "single"
        from app.train.load import load_model

        return FitResult(
            out_dir=self.out_dir,
            model_dir=model_dir,
            validated_model_dir=model_dir,
            leaderboard=board.drop(columns=["checkpoint", "history"]),
            model=load_model(model_dir),
            chosen=chosen,
            metric=sspec.metric,
            mode=sspec.mode,
            best_score=best_single,
            ensemble_score=ens_score,
            ensemble_weights={d.name: float(wt) for d, wt in zip(dirs, weights, strict=True) if wt > 0},
            cv=cv_record,
            best_trial=dirs[0].name,
        )

    def _cross_validate(
        self,
        board: pd.DataFrame,
        data: TrialData | StreamingData | None,
        sspec,
        settings: RayTuneSettings,
        *,
        deadline: float | None,
        cpus: float,
    ) -> tuple[cv.CVRun | None, dict[str, Any]]:
        """Cross-validate the best trials when ``cv.folds_for`` says so, leaving before ``deadline`` the
        time to refit the ensemble's members; the run (None if nothing was kept) and its record."""
        folds, reason = cv.folds_for(settings, data) if data is not None else (0, "no data")
        if not folds:
            return None, {"done": False, "reason": reason}
        cands = cv.candidates(board, top_k=settings.cv_top_k)
        cv_deadline = None
        if deadline is not None:
            from app.search import refit

            # A member's refit at its trial's round count (the folds' count is not known yet).
            refit_s = sum(
                refit.estimate_seconds(trial_seconds=c.train_time_s, rounds_run=1, rounds=1, streaming=False)
                for c in cands[: max(1, settings.ensemble_size)]
            )
            cv_deadline = deadline - refit_s - CHOOSE_S
        run = cv.cross_validate(
            cands,
            data.with_valid_in_train(),
            folds=folds,
            task=sspec.task,
            metric=sspec.metric,
            maximize=sspec.mode == "max",
            max_rounds=settings.max_rounds,
            early_stopping_rounds=settings.early_stopping_rounds,
            trial_rows=len(data.y_train),
            seed=settings.seed,
            deadline=cv_deadline,
            slots=max(1, int(cpus)),
        )
        return (run if run.scored else None), run.record()

    def _refit(
        self,
        result: FitResult,
        board: pd.DataFrame,
        data: TrialData | StreamingData,
        sspec,
        settings: RayTuneSettings,
        *,
        threads: int,
        deadline: float | None,
    ) -> dict[str, Any]:
        """Refit the chosen model's members on train + valid in place, keeping the validated choice in
        ``validated_model/``; skipped (with the reason) when off or when it would overrun the budget.

        After cross-validation the refit is part of the choice: it always runs (its time was kept out of
        cross-validation's deadline), with each member's folds' mean best round count."""
        from app.search import refit
        from app.train.load import load_model

        if not settings.refit:
            return {"done": False, "reason": "refit=False"}
        model_dir = result.model_dir
        rows = board.set_index("trial_id")
        best_id = result.best_trial
        cv_rounds = None
        if result.cv.get("done"):
            cv_rounds = {c["trial_id"]: c["rounds"] for c in result.cv["candidates"]}
        if cv_rounds is None and deadline is not None:
            expected = 0.0
            for d, trial_id in refit.members(model_dir, trial_id=best_id):
                meta = json.loads((d / "metadata.json").read_text())
                seconds = rows.loc[trial_id, "train_time_s"]
                expected += refit.estimate_seconds(
                    trial_seconds=float(seconds) if pd.notna(seconds) else 0.0,
                    rounds_run=int(meta["num_rounds"]),
                    rounds=int(meta["best_iteration"]) + 1,
                    streaming=isinstance(data, StreamingData),
                )
            if time.monotonic() + expected > deadline:
                return {"done": False, "reason": f"time budget: the refit needs ~{expected:.0f} s"}
        validated = self.out_dir / VALIDATED_DIR
        shutil.rmtree(validated, ignore_errors=True)
        shutil.copytree(model_dir, validated)
        result.validated_model_dir = validated
        records = refit.refit_model(
            model_dir,
            data=data,
            params={str(t): json.loads(p) for t, p in rows["params"].items()},
            metric=sspec.metric,
            threads=max(1, threads),
            storage_path=self.out_dir / "refit",
            trial_id=best_id,
            rounds=cv_rounds,
        )
        result.model = load_model(model_dir)
        return {"done": True, "reason": None, "members": records}

    def _record_result(self, result: FitResult) -> None:
        """Add what the fit chose, where trials trained and whether it refit to ``fit.json``."""
        path = self.out_dir / FIT_FILE
        saved = json.loads(path.read_text())
        saved["result"] = {
            "chosen": result.chosen,
            "metric": result.metric,
            "best_score": result.best_score,
            "ensemble_score": result.ensemble_score,
            "trainer": result.trainer,
            "refit": result.refit,
            "cv": result.cv,
            "validated_model_dir": str(result.validated_model_dir or result.model_dir),
            "interrupted": interrupt.requested(),
        }
        atomic.write_text(path, json.dumps(saved, indent=2))


def _checkout(checkpoint: str, directory: Path) -> Path:
    """A trial's checkpoint (its saved model) copied to ``directory``."""
    from ray.tune import Checkpoint

    Checkpoint(checkpoint).to_directory(str(directory))
    return directory


def _predict(model_dir: Path, valid: ValidRows) -> np.ndarray:
    """A saved model's predictions for encoded rows: probabilities ``(n, k)`` or values ``(n,)``."""
    from app.train.load import load_model

    predictor = load_model(model_dir)
    return predict_encoded(predictor.family, predictor.model, predictor.preprocessor, valid.x)
