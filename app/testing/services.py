"""Context managers that start real service processes on loopback ports for tests and benchmarks.

Each one starts the real thing (moto's S3 server, redis-server, mlflow server, ``ray start --head``),
waits until it answers and stops it on exit, so nothing outlives the block that asked for it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(check, *, timeout_s: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} before it was ready")
        try:
            if check():
                return
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
            last_error = exc
        time.sleep(0.2)
    raise TimeoutError(f"{what} not ready after {timeout_s:.0f} s (last error: {last_error})")


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
        _wait_for(
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
        _wait_for(lambda: redis.Redis.from_url(started).ping(), timeout_s=20, what="redis-server", proc=proc)
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
            _wait_for(
                lambda: urllib.request.urlopen(f"{url}/health", timeout=2).status == 200,
                timeout_s=90,
                what="mlflow server",
                proc=proc,
            )
            yield url
        finally:
            _stop(proc)
            log.close()


@dataclass(frozen=True)
class RayHead:
    """A ``ray start --head`` cluster: GCS address for drivers, dashboard URL for jobs and Serve."""

    address: str
    dashboard_url: str
    temp_dir: str
    auth_token_path: str | None = None

    def env(self) -> dict[str, str]:
        """Variables that point Ray CLIs and drivers at this head, with its token when auth is on."""
        if self.auth_token_path is None:
            return {"RAY_ADDRESS": self.address, "RAY_AUTH_MODE": "disabled"}
        return {
            "RAY_ADDRESS": self.address,
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": self.auth_token_path,
        }

    def headers(self) -> dict[str, str]:
        """HTTP headers for the dashboard's REST API (the bearer token when auth is on)."""
        if self.auth_token_path is None:
            return {}
        return {"Authorization": f"Bearer {Path(self.auth_token_path).read_text().strip()}"}


# Worker-port ranges of the Ray nodes this process starts: each node's its own, between Ray's default
# (10002-19999, other local Rays) and the kernel's ephemeral ports (from 32768: free_port()'s, which Ray
# refuses to see inside a worker range).
_PORT_RANGES = itertools.count(os.getpid())


def _ray_start(
    *args: str, num_cpus: float, resources: dict[str, float] | None, temp_dir: str, env: dict[str, str] | None
) -> subprocess.Popen:
    """``ray start --block ARGS`` with this node's CPUs, custom resources and ports of its own, logging to
    ``temp_dir/ray-start.log``; the process leads its own group."""
    # Job entrypoints run `python` from PATH: make it this environment's interpreter.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    full_env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PATH": path, **(env or {})}
    full_env.pop("RAY_ADDRESS", None)
    base = 20000 + (next(_PORT_RANGES) % 12) * 1000
    cmd = [
        _bin("ray"),
        "start",
        "--block",
        *args,
        f"--num-cpus={num_cpus:g}",
        *([f"--resources={json.dumps(resources)}"] if resources else []),
        # Ray 2.60 takes a temp dir per node ("can be specified per node"): each node's logs stay apart.
        f"--temp-dir={temp_dir}",
        "--disable-usage-stats",
        # Every port of its own: another cluster or node on the machine may hold a default (e.g. 52365).
        f"--dashboard-agent-listen-port={free_port()}",
        f"--metrics-export-port={free_port()}",
        f"--min-worker-port={base}",
        f"--max-worker-port={base + 999}",
    ]
    log = open(Path(temp_dir) / "ray-start.log", "wb")  # noqa: SIM115 - the process keeps it
    try:
        return subprocess.Popen(
            cmd, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    finally:
        log.close()


@contextlib.contextmanager
def ray_head(
    *,
    num_cpus: float = 2,
    dashboard: bool = True,
    resources: dict[str, float] | None = None,
    env: dict[str, str] | None = None,
    auth: bool = False,
) -> Iterator[RayHead]:
    """``ray start --head --block`` on free, non-default ports (Redis holds 6379).

    ``--block`` keeps every process of this head in one process group, so stopping it stops this
    cluster alone; ``ray stop`` would stop every Ray cluster on the machine. ``resources`` are custom
    resources of the head node; ``env`` adds to the environment every process of the cluster sees.
    ``auth``: token authentication on, as outside tests, with a token of its own (``RayHead.env()``).
    """
    port, dash_port = free_port(), free_port()
    temp_dir = tempfile.mkdtemp(prefix="rayhead-", dir="/tmp")
    token_path = None
    if auth:
        import secrets

        token_path = str(Path(temp_dir) / "auth_token")
        Path(token_path).write_text(secrets.token_hex(32))
        env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": token_path, **(env or {})}
    proc = _ray_start(
        "--head",
        f"--port={port}",
        f"--include-dashboard={'true' if dashboard else 'false'}",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dash_port}",
        f"--ray-client-server-port={free_port()}",
        num_cpus=num_cpus,
        resources=resources,
        temp_dir=temp_dir,
        env=env,
    )
    head = RayHead(
        address=f"127.0.0.1:{port}",
        dashboard_url=f"http://127.0.0.1:{dash_port}",
        temp_dir=temp_dir,
        auth_token_path=token_path,
    )
    version = urllib.request.Request(f"{head.dashboard_url}/api/version", headers=head.headers())
    try:
        if dashboard:
            _wait_for(
                lambda: urllib.request.urlopen(version, timeout=2).status == 200,
                timeout_s=90,
                what="Ray dashboard",
                proc=proc,
            )
        else:
            _wait_ray(
                lambda: alive_node_names(head.address), what="Ray head node", proc=proc, temp_dir=temp_dir
            )
        yield head
    finally:
        _stop(proc, timeout_s=5)
        shutil.rmtree(temp_dir, ignore_errors=True)


@dataclass
class RayNode:
    """A worker node started by ``ray_node``; ``kill()`` takes it down as a lost machine would go."""

    proc: subprocess.Popen
    temp_dir: str
    name: str

    def kill(self) -> None:
        """SIGKILL every process of this node (its raylet, object store and workers) and nothing else:
        ``ray stop`` cannot target one node, it stops every Ray process on the machine."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=15)


def _wait_ray(check, *, what: str, proc: subprocess.Popen, temp_dir: str) -> None:
    """``_wait_for`` a node started by ``_ray_start``; a failure quotes what ``ray start`` said."""
    try:
        _wait_for(check, timeout_s=90, what=what, proc=proc)
    except (RuntimeError, TimeoutError) as exc:
        tail = Path(temp_dir, "ray-start.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{exc}; ray start said:\n{tail}") from None


def alive_node_names(address: str) -> list[str]:
    """Names of the alive nodes of the cluster at ``address``, from its GCS (no driver connects)."""
    from ray._raylet import GcsClient

    nodes = GcsClient(address=address).get_all_node_info(timeout=5).values()
    return [n.node_name for n in nodes if n.state == 0]  # 0: ALIVE


@contextlib.contextmanager
def ray_node(
    head: RayHead,
    *,
    num_cpus: float = 1,
    resources: dict[str, float] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[RayNode]:
    """A second node joining ``head`` from this machine (``ray start --address --block``), with its own
    CPUs, custom resources (to pin work to it), temp dir and ports; waits until the GCS counts it."""
    temp_dir = tempfile.mkdtemp(prefix="raynode-", dir="/tmp")
    name = Path(temp_dir).name
    proc = _ray_start(
        f"--address={head.address}",
        f"--node-name={name}",
        num_cpus=num_cpus,
        resources=resources,
        temp_dir=temp_dir,
        env=env,
    )
    node = RayNode(proc=proc, temp_dir=temp_dir, name=name)
    try:
        _wait_ray(
            lambda: name in alive_node_names(head.address),
            what="Ray worker node",
            proc=proc,
            temp_dir=temp_dir,
        )
        yield node
    finally:
        _stop(proc, timeout_s=5)
        shutil.rmtree(temp_dir, ignore_errors=True)


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
        _wait_for(
            lambda: urllib.request.urlopen(f"{url}/-/ready", timeout=2).status == 200,
            timeout_s=60,
            what="prometheus",
            proc=proc,
        )
        yield url
    finally:
        _stop(proc)
        shutil.rmtree(work, ignore_errors=True)
