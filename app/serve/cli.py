"""``automl serve``: the prediction service on a local Ray (or RAY_ADDRESS), in the foreground."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import typer

from app._cli import fail


def serve(
    model: str = typer.Argument(
        None, help="Model directory or models:/NAME@alias URI (or set it in --config)."
    ),
    config: Path = typer.Option(None, "--config", help="serve_config.yaml (default: built-in settings)."),
    redis: str = typer.Option(None, "--redis", help="Redis URL for the prediction cache (env REDIS_URL)."),
    port: int = typer.Option(None, "--port", help="HTTP port (default: the config's, 8000)."),
    host: str = typer.Option(None, "--host", help="HTTP host (default: the config's, 127.0.0.1)."),
    detach: bool = typer.Option(
        False,
        "--detach",
        help="Deploy on the running cluster (RAY_ADDRESS) and return, as `serve deploy` does; "
        "`serve shutdown` stops it.",
    ),
) -> str | None:
    """Serve a model over HTTP until Ctrl-C (POST /predict, GET /docs), or deploy it and return (--detach)."""
    import os

    from app.config import ConfigError

    if detach and not os.environ.get("RAY_ADDRESS"):
        # Without a cluster the service would live in a private Ray that ends with this command.
        fail("--detach needs a running Ray cluster: set RAY_ADDRESS")

    try:
        from app.serve.deploy import load_serve_config

        deploy_config = load_serve_config(config, model=model, redis_url=redis, port=port, host=host)
    except (ConfigError, ValueError) as exc:
        fail(exc)
    source = Path(deploy_config.applications[0].args["model"])  # a local path is absolute here, a URI not
    if not os.environ.get("RAY_ADDRESS") and source.is_absolute() and not source.is_dir():
        # A private local Ray reads the model from this machine: say so before Serve starts replicas
        # that would fail on it (on a cluster the path is the nodes' to resolve).
        fail(f"model {source}: no model directory there")
    import ray
    from ray import serve as ray_serve

    from app import _console as console
    from app.cluster import ClusterUnreachableError, connect
    from app.serve.deploy import deploy

    console.start(console.scratch_dir() / "serve" / console.LOG_NAME)  # Ray's and Serve's own logs
    try:  # RAY_ADDRESS, else a private local Ray on loopback
        connect()
    except ClusterUnreachableError as exc:
        fail(exc)
    if detach:
        try:
            url = deploy(deploy_config)
        finally:
            ray.shutdown()  # the service stays: Serve's controller and replicas are detached actors
        typer.echo(f"deployed at {url}/predict  (API docs: {url}/docs); `serve shutdown` stops it")
        return url
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        url = deploy(deploy_config)
        typer.echo(f"serving at {url}/predict  (API docs: {url}/docs); Ctrl-C stops", err=True)
        stop.wait()
        typer.echo("stopping", err=True)
    finally:
        # Only this application goes: other Serve applications on a cluster keep running, and a private
        # Ray goes with ray.shutdown (serve.shutdown() would fail the controller's graceful_shutdown task,
        # which Ray prints on the terminal as a raw "(raylet) Task ... failed" line).
        if os.environ.get("RAY_ADDRESS"):
            ray_serve.delete(deploy_config.applications[0].name)
        ray.shutdown()
    return None
