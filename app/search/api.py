"""``run_fit``: an ``AppConfig`` and a data path in, a searched model under ``out_dir`` out; what
``automl fit`` and ``jobs/automl.py`` call, so both read the config file and the environment alike."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.search.engine import AutoMLEngine, FitResult, RayTuneOptimizer
from app.search.settings import RayTuneSettings

if TYPE_CHECKING:
    from app.config import AppConfig

TASKS = ("binary", "multiclass", "regression")


def run_fit(
    data: str | list[str] | None,
    *,
    target: str | None,
    config: AppConfig,
    out_dir: str | Path,
    task: str | None = None,
    resume: bool = False,
    notify: Callable[[str], None] | None = None,
    progress: Callable[..., None] | None = None,
    started: float | None = None,
    **overrides: Any,
) -> FitResult:
    """Search with ``config.search`` (``overrides`` that are not None on top), track to
    ``config.tracking``, read ``s3://`` data through ``config.data.s3`` and run on ``config.ray``.

    With ``resume`` the interrupted fit in ``out_dir`` continues with its saved settings. ``notify``
    receives what the user should know about the data as it is used, ``progress`` a line per stage
    (``AutoMLEngine``), ``started`` when the time budget began (``time.monotonic()``; default now).

    Example:
        >>> cfg = AppConfig.from_yaml("automl.yaml")  # doctest: +SKIP
        >>> result = run_fit("data/", target="y", config=cfg, out_dir="a1", num_samples=20)  # doctest: +SKIP
        >>> result.model.predict(rows)  # doctest: +SKIP
    """
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be auto, {', '.join(TASKS)}, not {task!r}")
    settings = RayTuneSettings.from_config(config, **overrides)
    engine = AutoMLEngine(
        RayTuneOptimizer(settings),
        out_dir=out_dir,
        data_config=config.data,
        tracking=config.tracking,
        notify=notify,
        progress=progress,
        started=started,
    )
    if resume:
        return engine.resume()
    if data is None or target is None:
        raise ValueError("DATA and --target are required (or --resume with --out of an earlier fit)")
    return engine.fit(data, target=target, task=task)
