"""Serve fixtures: model directories of each family and an ensemble, and the application of
serve_config.yaml deployed on the session's Ray with a Redis of its own (so a test can stop it)."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from app.data.synthetic import make_frame
from app.testing import services
from app.testing.wait import wait_until
from tests.tracking.conftest import train_model_dir

ROOT = Path(__file__).resolve().parents[2]
# Small replicas: the tests share 2 CPUs with the Serve controller and proxy.
TEST_DEPLOYMENT = {"ray_actor_options": {"num_cpus": 0.25}}


class Traffic:
    """A client loop in a thread: requests of ``rows`` records each until stopped; every status and served
    version kept. ``post(body)`` sends one and returns ``(status, headers, body)``."""

    def __init__(self, post, records, *, rows: int = 1, pause_s: float = 0.0) -> None:
        self.post, self.records, self.rows, self.pause_s = post, records, rows, pause_s
        self.results: list[tuple[int, str | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            batch = [self.records[(i + k) % len(self.records)] for k in range(self.rows)]
            try:
                status, headers, _ = self.post({"dataframe_records": batch})
                self.results.append((status, headers.get("x-model-version")))
            except OSError:
                self.results.append((0, None))
            i += self.rows
            if self.pause_s:
                time.sleep(self.pause_s)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(60)

    def wait_for(self, predicate, timeout_s: float) -> None:
        """Until ``predicate(results)`` holds; the error quotes the last results."""
        try:
            wait_until(
                lambda: predicate(self.results), timeout_s=timeout_s, what="the client loop's condition"
            )
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; last results {self.results[-5:]}") from None


@pytest.fixture(scope="session")
def family_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("serve-models")
    dirs = {f: train_model_dir(root / f / "model", family=f) for f in ("xgboost", "lightgbm", "catboost")}
    from app.train.ensemble import save_ensemble

    out = root / "ensemble" / "model"
    members = [shutil.copytree(dirs[f], out / f"member_{i}") for i, f in enumerate(("xgboost", "lightgbm"))]
    dirs["ensemble"] = save_ensemble(members, np.array([0.6, 0.4]), out, info={"metric": "logloss"})
    # Models of numbers alone: their requests take the one-matrix path (app.serve.schema.Rows).
    for f in ("xgboost", "lightgbm", "catboost"):
        dirs[f"{f}-numbers"] = train_model_dir(root / f"{f}-numbers" / "model", family=f, numbers_only=True)
    out = root / "ensemble-numbers" / "model"
    members = [
        shutil.copytree(dirs[f"{f}-numbers"], out / f"member_{i}")
        for i, f in enumerate(("xgboost", "catboost"))
    ]
    dirs["ensemble-numbers"] = save_ensemble(members, np.array([0.5, 0.5]), out, info={"metric": "logloss"})
    return dirs


@pytest.fixture(scope="session")
def bagged_dir(ray_session, tmp_path_factory) -> Path:
    """A bag as a fit writes it (``search.bagging``): every chosen member's fold models, one directory."""
    from app.search import AutoMLEngine, RayTuneOptimizer, RayTuneSettings

    settings = RayTuneSettings(
        num_samples=2,
        families=["lightgbm", "xgboost"],
        scheduler="fifo",
        max_rounds=30,
        cv_folds=3,
        bagging=True,
    )
    out = tmp_path_factory.mktemp("serve-bag") / "bagged"  # served under the name "bagged"
    frame = make_frame(600, task="binary", seed=0)
    result = AutoMLEngine(RayTuneOptimizer(settings), out_dir=out, track=False).fit(frame, target="y")
    assert result.bagging["done"]
    return result.model_dir


@pytest.fixture(scope="session")
def rows():
    frame = make_frame(40, task="binary", seed=7).drop(columns=["y"])
    return frame, json.loads(frame.to_json(orient="records", date_format="iso"))


class OwnRedis:
    """A redis-server this test module can stop and start again on the same port."""

    def __init__(self) -> None:
        self.port = services.free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        import redis

        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until(
            lambda: redis.Redis.from_url(self.url, socket_timeout=0.5).ping(),
            timeout_s=20,
            interval_s=0.1,
            what="redis-server",
            proc=self.proc,
        )

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture(scope="module")
def own_redis():
    server = OwnRedis()
    server.start()
    yield server
    server.stop()


class Service:
    """The deployed application: its URL, and how to redeploy it with other args."""

    def __init__(self, port: int, redis_url: str | None) -> None:
        self.port, self.redis_url = port, redis_url
        self.url = f"http://127.0.0.1:{port}"

    def deploy(self, model: Path | str, *, deployment: dict | None = None, **args) -> None:
        from app.serve.deploy import deploy, load_serve_config

        config = load_serve_config(
            ROOT / "serve_config.yaml",
            model=str(model),
            redis_url=self.redis_url,
            port=self.port,
            args=args,
            deployment={**TEST_DEPLOYMENT, **(deployment or {})},
        )
        deploy(config)

    def post(self, body, *, path="/predict", content_type="application/json", headers=None):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path, data=data, headers={"content-type": content_type, **(headers or {})}
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, dict(resp.headers), json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), _body(exc.read())

    def get(self, path):
        try:
            with urllib.request.urlopen(self.url + path, timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, _body(exc.read())


def _body(raw: bytes):
    """An error body as JSON when it is (the app's own errors), else as text: Serve's proxy answers a
    request lost with its replica in plain text, and a client loop must count that, not die on it."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


@pytest.fixture(scope="module")
def service(ray_session, own_redis, family_dirs):
    from ray import serve

    svc = Service(services.free_port(), own_redis.url)
    svc.deploy(family_dirs["xgboost"])
    yield svc
    serve.shutdown()
