"""Context managers that start real service processes on loopback ports for tests and benchmarks.

Each one starts the real thing (moto's S3 server, redis-server, mlflow server, Prometheus; Ray clusters are
in ``ray_cluster``), waits until it answers and stops it on exit, so nothing outlives the block that asked.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from app.testing.wait import wait_until


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(proc: subprocess.Popen, *, timeout_s: float = 15) -> None:
    """SIGTERM the process group, SIGKILL it after ``timeout_s``; the group includes grandchildren."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=timeout_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=timeout_s)


def _bin(name: str) -> str:
    """A console script of this environment, falling back to PATH."""
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else (shutil.which(name) or name)


@dataclass(frozen=True)
class S3Endpoint:
    """An S3-compatible HTTP endpoint with the credentials that reach it."""

    endpoint_url: str
    access_key: str = "testing"
    secret_key: str = "testing"
    region: str = "us-east-1"

    def env(self) -> dict[str, str]:
        """The AWS_* variables that point boto3, s3fs and pyarrow at this endpoint."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
        )


@contextlib.contextmanager
def moto_s3() -> Iterator[S3Endpoint]:
    """moto's S3 server in server mode (``ThreadedMotoServer``): real HTTP on a free loopback port."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = S3Endpoint(endpoint_url=f"http://127.0.0.1:{port}")
    try:
        wait_until(
            lambda: urllib.request.urlopen(endpoint.endpoint_url, timeout=2).status < 500,
            timeout_s=20,
            what="moto S3 server",
        )
        yield endpoint
    finally:
        server.stop()


@contextlib.contextmanager
def redis_server(
    *, url: str | None = "redis://127.0.0.1:6379/0", password: str | None = None
) -> Iterator[str]:
    """A Redis URL: the given server if it answers PING, else a ``redis-server`` started here (with
    ``requirepass`` when ``password`` is given; ``url=None`` always starts one)."""
    import redis

    if url:
        try:
            if redis.Redis.from_url(url, socket_timeout=1).ping():
                yield url
                return
        except redis.RedisError:
            pass
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError(
            "no Redis answers and redis-server is not installed (apt-get install redis-server)"
        )
    port = free_port()
    auth = ["--requirepass", password] if password else []
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", *auth],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    started = f"redis://{f':{password}@' if password else ''}127.0.0.1:{port}/0"
    try:
        wait_until(lambda: redis.Redis.from_url(started).ping(), timeout_s=20, what="redis-server", proc=proc)
        yield started
    finally:
        _stop(proc)


@contextlib.contextmanager
def mlflow_server(
    *,
    backend_store_uri: str | None = None,
    artifacts_destination: str | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """An ``mlflow server`` process (SQLite backend in a temp dir unless told otherwise); yields its URL."""
    with tempfile.TemporaryDirectory(prefix="mlflow-") as tmp:
        port = free_port()
        cmd = [
            _bin("mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            backend_store_uri or f"sqlite:///{tmp}/mlflow.db",
            "--artifacts-destination",
            artifacts_destination or f"{tmp}/artifacts",
        ]
        log = open(Path(tmp) / "server.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until(
                lambda: urllib.request.urlopen(f"{url}/health", timeout=2).status == 200,
                timeout_s=180,  # imports and the SQLite migrations: slow on a loaded 2-core machine
                what="mlflow server",
                proc=proc,
            )
            yield url
        finally:
            _stop(proc)
            log.close()


@contextlib.contextmanager
def prometheus(
    *, service_discovery: str | Path, scrape_interval_s: int = 1, port: int | None = None
) -> Iterator[str]:
    """A real Prometheus (Debian's ``prometheus`` package) on a free loopback port (or ``port``, for a
    Ray head told its address before it exists), scraping the Ray nodes listed in ``service_discovery``
    (read again every second: it may appear later) with deploy/prometheus's rules; yields its URL."""
    import yaml

    exe = shutil.which("prometheus")
    if exe is None:
        raise RuntimeError("prometheus is not installed (apt-get install prometheus)")
    rules = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"
    work = Path(tempfile.mkdtemp(prefix="prometheus-"))
    config = {
        "global": {
            "scrape_interval": f"{scrape_interval_s}s",
            "evaluation_interval": f"{scrape_interval_s}s",
        },
        "rule_files": [str(rules)],
        "scrape_configs": [
            {
                "job_name": "ray",
                "file_sd_configs": [{"files": [str(service_discovery)], "refresh_interval": "1s"}],
            }
        ],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = port or free_port()
    proc = subprocess.Popen(
        [
            exe,
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: urllib.request.urlopen(f"{url}/-/ready", timeout=2).status == 200,
            timeout_s=60,
            what="prometheus",
            proc=proc,
        )
        yield url
    finally:
        _stop(proc)
        shutil.rmtree(work, ignore_errors=True)
