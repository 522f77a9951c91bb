"""Deploying serve_config.yaml from Python (what `serve run` / `serve deploy` do): the config read with
Serve's own schema, our ``args`` checked before anything starts, then deployed and waited on."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from app.config import ConfigError, describe
from app.serve.app import absolute_source, serve_config
from app.serve_config import ServeConfig

APP_NAME = "automl"
IMPORT_PATH = "app.serve:build_app"
# What `serve build app.serve:service` writes: the application object, its model in the user_config.
BUILT_PATH = "app.serve:service"


def load_serve_config(
    path: str | Path | None = None,
    *,
    model: str | None = None,
    redis_url: str | None = None,
    port: int | None = None,
    host: str | None = None,
    args: dict[str, Any] | None = None,
    deployment: dict[str, Any] | None = None,
) -> Any:
    """serve_config.yaml (or the built-in one when ``path`` is None) as Serve's ``ServeDeploySchema``,
    with the given values overriding the automl application's ``args``, its deployment's options
    (``deployment``; ``ray_actor_options`` merged key by key) and ``http_options``."""
    from pydantic import ValidationError
    from ray.serve.schema import ServeDeploySchema

    raw = _read(path) if path else _default_config()
    apps = [a for a in raw.get("applications") or [] if a.get("import_path") in (IMPORT_PATH, BUILT_PATH)]
    if not apps:
        raise ConfigError(f"{path}: no application with import_path {IMPORT_PATH}")
    if apps[0]["import_path"] == BUILT_PATH:
        apps[0]["import_path"] = IMPORT_PATH
        for spec in apps[0].get("deployments") or []:
            user = spec.pop("user_config", None) or {}
            apps[0].setdefault("args", {}).update({k: v for k, v in user.items() if v})
    app_args = apps[0].setdefault("args", {}) or {}
    apps[0]["args"] = app_args
    app_args.update({k: v for k, v in {"model": model, "redis_url": redis_url, **(args or {})}.items() if v})
    if app_args.get("model"):
        app_args["model"] = absolute_source(app_args["model"])
    for spec in apps[0].setdefault("deployments", []) or []:
        for key, value in (deployment or {}).items():
            merged = {**(spec.get(key) or {}), **value} if key == "ray_actor_options" else value
            spec[key] = merged
    try:  # our args' errors name the file and the field before Serve starts anything
        ServeConfig.model_validate(app_args)
    except ValidationError as exc:
        where = f"applications[{raw['applications'].index(apps[0])}].args"
        raise ConfigError(describe(exc, f"{path or 'serve config'}: {where}")) from None
    if not serve_config(app_args).model:
        raise ConfigError(
            f"{path or 'serve config'}: args.model: required (a model directory or models:/ URI)"
        )
    http = raw.setdefault("http_options", {})
    http.update({k: v for k, v in {"port": port, "host": host}.items() if v is not None})
    if "port" in http and not (isinstance(http["port"], int) and 0 < http["port"] < 65536):
        raise ConfigError(
            f"{path or 'serve config'}: http_options.port: {http['port']!r} is not a port (1-65535)"
        )
    try:
        return ServeDeploySchema.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path or 'serve config'}: {exc}") from None


def deploy(config: Any, *, timeout_s: float = 180.0) -> str:
    """Deploy ``config`` on the connected Ray cluster and wait until every application runs; the base URL."""
    import ray
    from ray.serve._private import api as serve_api
    from ray.serve.config import gRPCOptions

    # An application without a runtime_env gets this driver's: under `ray job submit` that is the job's
    # uploaded working dir and uv environment, so replicas on nodes without the project import the same code.
    driver_env = dict(ray.get_runtime_context().runtime_env or {})
    for app in config.applications:
        if not app.runtime_env and driver_env:
            app.runtime_env = driver_env
    client = serve_api.serve_start(
        http_options=config.http_options.model_dump(),
        proxy_location=config.proxy_location,
        grpc_options=gRPCOptions(**config.grpc_options.model_dump()),
    )
    client.deploy_apps(config, _blocking=False)
    wait_running([a.name for a in config.applications], timeout_s=timeout_s)
    return f"http://{config.http_options.host}:{config.http_options.port}"


def wait_running(names: list[str], *, timeout_s: float) -> None:
    from ray import serve

    deadline = time.monotonic() + timeout_s
    while True:
        apps = serve.status().applications
        states = {n: (apps[n].status if n in apps else "NOT_STARTED") for n in names}
        if all(s == "RUNNING" for s in states.values()):
            return
        failed = {n: apps[n].message for n in names if n in apps and apps[n].status == "DEPLOY_FAILED"}
        if failed:
            raise RuntimeError(f"deploying {', '.join(failed)} failed: {next(iter(failed.values()))}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"applications not running after {timeout_s:.0f} s: {states}")
        time.sleep(0.5)


def _read(path: str | Path) -> dict:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: serve config not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return raw


def _default_config() -> dict:
    return {
        "http_options": {"host": "127.0.0.1", "port": 8000},
        "applications": [
            {
                "name": APP_NAME,
                "route_prefix": "/",
                "import_path": IMPORT_PATH,
                "args": {},
                "deployments": [{"name": "ModelServer", "max_ongoing_requests": 64}],
            }
        ],
    }


@dataclass(frozen=True)
class ServeCheck:
    """What a short serving run answered: where, how many rows, how many came from the cache."""

    url: str
    docs_url: str
    version: str
    requests: int
    rows: int
    cache_hits: int


def serve_briefly(model: str | Path, records: list[dict[str, Any]], *, port: int | None = None) -> ServeCheck:
    """Serve ``model`` on the connected Ray, send ``records`` one request per row and the first row again
    (a cache hit), then shut Serve down: the main job's last stage."""
    import json
    import urllib.request

    from ray import serve

    config = load_serve_config(None, model=str(model), port=port or _free_port())
    url = deploy(config)
    rows = hits = 0
    version = ""
    try:
        for record in [*records, records[0]]:
            req = urllib.request.Request(
                f"{url}/predict",
                data=json.dumps({"dataframe_records": [record]}).encode(),
                headers={"content-type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=30) as resp:
                body = json.loads(resp.read())
                rows += len(body["predictions"])
                hits += int(resp.headers["x-cache-hits"])
                version = body["model"]["version"]
    finally:
        # Only this application goes: on a shared cluster other Serve applications keep running, and
        # serve.shutdown() would also fail the controller's graceful_shutdown task, which Ray reports
        # on the driver's stdout as a raw "(raylet) Task ... failed" line.
        serve.delete(APP_NAME)
    return ServeCheck(url, f"{url}/docs", version, len(records) + 1, rows, hits)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
