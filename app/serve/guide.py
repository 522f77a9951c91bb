"""The deployment guide's serving surface (example 5) over the same Serve application:
``create_app(model=..., model_id=..., cache=PredictionCache(RedisCache(...)))`` and ``run_server(...)``.
``workers`` become Serve replicas, not uvicorn worker processes."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

from app.serve.app import absolute_source
from app.serve.cache import PredictionCache, RedisCache


def create_app(*, model: Any, model_id: str | None = None, cache: PredictionCache | None = None, **args: Any):
    """The Serve application for ``model`` (a loaded model, a model directory or a ``models:/`` URI).

    Example (guide):
        >>> model = load_model("runs/a1/model")  # doctest: +SKIP
        >>> cache = PredictionCache(RedisCache(host="redis", port=6379, default_ttl=300))  # doctest: +SKIP
        >>> app = create_app(model=model, model_id="v1.2.3", cache=cache)  # doctest: +SKIP
        >>> serve.run(app)  # doctest: +SKIP
    """
    from app.serve.app import build_app

    return build_app(_args(model, model_id, cache, args))


def run_server(
    model: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    model_id: str | None = None,
    cache: PredictionCache | None = None,
    **args: Any,
) -> None:
    """Serve ``model`` on ``host:port`` with ``workers`` replicas until SIGINT/SIGTERM, then stop Serve
    (and the local Ray this started). Connects to ``RAY_ADDRESS`` when it is set."""
    import ray
    from ray import serve

    from app.serve.deploy import deploy, load_serve_config

    config = load_serve_config(
        None,
        host=host,
        port=port,
        args=_args(model, model_id, cache, args),
        deployment={"num_replicas": workers},
    )
    started = not ray.is_initialized()
    if started:
        from app.cluster import connect

        connect()  # RAY_ADDRESS, else a private local Ray sharing this venv
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        url = deploy(config)
        print(f"serving at {url}/predict (docs: {url}/docs)", flush=True)
        stop.wait()
    finally:
        serve.shutdown()
        if started:
            ray.shutdown()


def _args(model: Any, model_id: str | None, cache: PredictionCache | None, extra: dict) -> dict[str, Any]:
    source = (
        model
        if isinstance(model, str | os.PathLike)
        else (getattr(model, "metadata", {}) or {}).get("source")
    )
    if not source:
        raise ValueError(
            "model: pass a model directory, a models:/ URI, or a model loaded by app.train.load_model"
        )
    out: dict[str, Any] = {"model": absolute_source(source)}
    if model_id:
        out["model_version"] = model_id
    if cache is not None:
        if isinstance(cache.backend, RedisCache):
            out["redis_url"] = cache.backend.url
        out["cache_ttl_s"] = cache.ttl
    return {**out, **extra}
