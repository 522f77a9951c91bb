"""The main job on embedded defaults: generated data through every stage built so far: data, training on
Ray Train, the search with a short budget (leaderboard, ensemble, MLflow tracking), batch prediction, and
a short spell of online serving (Ray Serve) of the fitted model."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app.cluster import connect
from app.config import AppConfig
from app.data import DatasetSpec, prepare
from app.data.synthetic import make_frame, write_parquet
from app.search import AutoMLEngine, RayTuneOptimizer, RayTuneSettings, leaderboard
from app.serve.deploy import ServeCheck, serve_briefly
from app.train.api import train
from app.train.model import save_model
from app.train.predict import predict_to_parquet

QUICKSTART_TRIALS = 30


@dataclass
class QuickstartResult:
    out_dir: Path
    data_dir: Path
    rows: dict[str, int]
    task: str
    artifacts: dict[str, Path]
    seconds: dict[str, float] = field(default_factory=dict)
    model_dir: Path | None = None
    family: str | None = None
    metric_name: str | None = None
    best_score: float | None = None
    leaderboard: str | None = None
    search_model_dir: Path | None = None
    predictions: Path | None = None
    tracking_uri: str | None = None
    served: ServeCheck | None = None


def run_quickstart(
    out_dir: str | Path,
    *,
    rows: int = 20_000,
    config: AppConfig | None = None,
    rounds: int = 50,
    time_budget_s: float = 90.0,
    progress: Callable[..., None] | None = None,
) -> QuickstartResult:
    """Generate a dataset, validate, split, profile and encode it, then train ``config.train.family``
    (XGBoost by default) for ``rounds`` rounds; artifacts and the model go to ``out_dir``.
    ``progress(stage, text, final=True)`` receives a line per stage (and the search's progress).

    Long on purpose: it reads as the walkthrough it is, stage after stage, each timed."""
    config = config or AppConfig()
    out_dir = Path(out_dir)
    say = progress or (lambda *_, **__: None)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    data_dir = out_dir / "data"
    write_parquet(make_frame(rows, task="binary"), data_dir, files=4)
    timings["generate"] = time.perf_counter() - start

    connect(config.ray)
    start = time.perf_counter()
    spec = DatasetSpec(uri=str(data_dir), target="y", s3=config.data.s3)
    data = prepare(spec, config=config.data)
    artifacts = data.save(out_dir)
    counts = {"train": data.profile.num_rows, "valid": data.splits.valid.count()}
    timings["data"] = time.perf_counter() - start
    say("data", f"{rows:,} rows generated and read: {counts['train']:,} train / {counts['valid']:,} valid")

    start = time.perf_counter()
    storage = config.train.storage_path or str((out_dir / "checkpoints").resolve())
    train_config = config.train.model_copy(update={"num_boost_round": rounds, "storage_path": storage})
    trained = train(data, config=train_config, s3=config.data.s3)
    model_dir = save_model(trained, out_dir / "model")
    artifacts["model"] = model_dir
    timings["train"] = time.perf_counter() - start
    say(
        "train",
        f"{trained.family} {trained.num_rounds} rounds, valid {trained.metric_name} {trained.best_score:.5f}",
    )

    start = time.perf_counter()
    # A walk through every stage: a bounded search (unless the config sets one) ends well inside the
    # budget, so the run report and the serving step always come; `automl fit` uses the whole budget.
    settings = RayTuneSettings.from_config(
        config,
        time_budget_s=time_budget_s,
        max_rounds=200,
        num_samples=config.search.num_samples or QUICKSTART_TRIALS,
    )
    fit = AutoMLEngine(
        RayTuneOptimizer(settings),
        out_dir=out_dir / "search",
        data_config=config.data,
        tracking=config.tracking,
        progress=progress,
    ).fit(str(data_dir), target="y")
    timings["search"] = time.perf_counter() - start

    start = time.perf_counter()
    new_rows = out_dir / "new_rows"
    write_parquet(make_frame(1_000, task="binary", seed=99).drop(columns=["y"]), new_rows, files=1)
    predictions = out_dir / "predictions.parquet"
    predict_to_parquet(fit.model_dir, str(new_rows), predictions)
    timings["predict"] = time.perf_counter() - start
    say("predict", f"1,000 new rows -> {predictions}")

    start = time.perf_counter()
    fresh = make_frame(3, task="binary", seed=98).drop(columns=["y"])
    served = serve_briefly(fit.model_dir, json.loads(fresh.to_json(orient="records", date_format="iso")))
    timings["serve"] = time.perf_counter() - start
    say("serve", f"{served.requests} requests answered at {served.url}/predict")
    return QuickstartResult(
        out_dir=out_dir,
        data_dir=data_dir,
        rows=counts,
        task=str(data.preprocessor.task),
        artifacts=artifacts,
        seconds=timings,
        model_dir=model_dir,
        family=trained.family,
        metric_name=trained.metric_name,
        best_score=trained.best_score,
        leaderboard=leaderboard.table(fit.leaderboard, limit=10),
        search_model_dir=fit.model_dir,
        predictions=predictions,
        served=served,
        tracking_uri=fit.tracking.get("tracking_uri"),
    )
