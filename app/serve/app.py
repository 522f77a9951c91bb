"""``build_app``: the Serve application named in serve_config.yaml (``import_path: app.serve:build_app``),
its ``args`` validated as ``ServeConfig`` (unknown keys are errors) with endpoints from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ray.serve import Application

from app.config import AppConfig
from app.serve_config import ServeConfig


def serve_config(args: Mapping[str, Any] | None, *, env: Mapping[str, str] | None = None) -> ServeConfig:
    """``args`` as a validated ``ServeConfig``; ``REDIS_URL`` and ``MLFLOW_TRACKING_URI`` override."""
    cfg = AppConfig.from_dict(
        {"serve": dict(args or {})}, source="serve args", env=os.environ if env is None else env
    )
    serve = cfg.serve
    if serve.tracking_uri is None and cfg.tracking.tracking_uri:
        serve = serve.model_copy(update={"tracking_uri": cfg.tracking.tracking_uri})
    return serve


def build_app(args: Mapping[str, Any] | None = None) -> Application:
    """The prediction service for ``args`` (see ``ServeConfig``).

    The model source travels as the deployment's ``user_config``: a `serve deploy` that changes only the
    model reaches the running replicas through ``reconfigure``, without restarting them.

    Example:
        >>> from ray import serve  # doctest: +SKIP
        >>> args = {"model": "runs/a1/model", "redis_url": "redis://127.0.0.1:6379/0"}
        >>> serve.run(build_app(args))  # doctest: +SKIP
    """
    from app.serve.server import ModelServer

    cfg = serve_config(args)
    if cfg.model:  # a relative path is read from where the app is built, not from each replica's cwd
        cfg = cfg.model_copy(update={"model": absolute_source(cfg.model)})
    static = cfg.model_dump(exclude={"model", "tracking_uri"})
    return ModelServer.options(user_config={"model": cfg.model, "tracking_uri": cfg.tracking_uri}).bind(
        static
    )


def absolute_source(model: Any) -> str:
    """A model path made absolute (replicas may not share our working directory); URIs as they are."""
    source = str(model)
    if source.startswith("models:/") or "://" in source:
        return source
    return str(Path(source).resolve())
