"""Ray clusters for tests and benchmarks: ``ray start --head`` and further nodes on this machine, each on
ports of its own (Redis holds 6379), stopped on exit without touching any other Ray on the machine."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from app.testing.services import _bin, _stop, free_port
from app.testing.wait import wait_until


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
            wait_until(
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
    """``wait_until`` for a node started by ``_ray_start``; a failure quotes what ``ray start`` said."""
    try:
        wait_until(check, timeout_s=90, what=what, proc=proc)
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
