"""Connecting to Ray: an existing cluster when an address is given, else a local Ray of our own.

Without an address (``RayConfig.address`` or ``RAY_ADDRESS``) a private local Ray starts
(``address="local"``), never the cluster some ``ray start`` last recorded on the machine; it listens on
loopback only, and a watchdog stops its processes at once if this process dies without shutting it
down. With an address the connection passes no local-only options, and an address nobody answers on is
one error within seconds instead of minutes of retries.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from app.config import RayConfig

# Ray decides its node IP at call time from this flag: off, every process of a local Ray binds
# 127.0.0.1 (the dashboard agent otherwise listens on all interfaces).
_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
_started_local = False
CONNECT_TIMEOUT_S = 5.0


class ClusterUnreachableError(RuntimeError):
    """A Ray address that does not answer."""


def connect(config: RayConfig | None = None) -> None:
    """``ray.init`` once: to ``config.address`` / ``RAY_ADDRESS`` if set, else a private local Ray."""
    import ray

    if ray.is_initialized():
        return
    config = config or RayConfig()
    address = config.address or os.environ.get("RAY_ADDRESS")
    if address:
        _check_reachable(address)
        try:
            ray.init(address=address, log_to_driver=False)
        except ConnectionError as exc:
            raise ClusterUnreachableError(f"Ray cluster {address!r}: {_one_line(exc)}") from None
    else:
        start_local(num_cpus=config.num_cpus, num_gpus=config.num_gpus)
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = False


def start_local(*, num_cpus: int | None = None, num_gpus: int | None = None) -> None:
    """A local Ray of this process's own, on loopback, stopped with this process whatever ends it."""
    import ray
    import ray._private.ray_constants as ray_constants

    os.environ[_LOOPBACK_ENV] = "0"  # for the processes Ray starts
    ray_constants.ENABLE_RAY_CLUSTER = False  # for this one, which imported ray already
    # Under `uv run`, Ray's uv hook would give every worker `uv run` in an uploaded copy of the working
    # directory: a fresh environment without the extras installed here. Local workers share this venv.
    ray_constants.RAY_ENABLE_UV_RUN_RUNTIME_ENV = False
    ray.init(
        address="local",
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        include_dashboard=False,
        log_to_driver=False,
    )
    _start_reaper()
    global _started_local
    _started_local = True


def started_local() -> bool:
    """Whether this process started a local Ray of its own (``start_local``), which the reaper stops."""
    return _started_local


def _start_reaper() -> None:
    """A small process that kills the local Ray's processes once this one is gone.

    Ray ties the GCS and the raylet to the driver, but after a SIGKILL its dashboard and runtime-env
    agents spend a minute trying to report the raylet's death to the dead GCS before they exit.
    """
    subprocess.Popen(
        [sys.executable, "-m", "app._reaper", str(os.getpid())],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        close_fds=True,
    )


def _check_reachable(address: str) -> None:
    """Fail in seconds when nothing listens at a ``host:port`` or ``ray://host:port`` address."""
    if address in ("auto", "local"):
        return
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ClusterUnreachableError(f"Ray address {address!r} is not host:port") from None
    if not host or not port:
        return
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ClusterUnreachableError(
            f"Ray cluster at {address!r} is not reachable ({reason}); check --ray-address, ray.address or "
            "RAY_ADDRESS, or unset them to start a local Ray"
        ) from None


class SharedStorageError(ValueError):
    """Run storage that only one node of a multi-node cluster can reach."""


# Filesystems every node can mount: a path on one of them is shared storage.
NETWORK_FILESYSTEMS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "ceph",
        "glusterfs",
        "lustre",
        "beegfs",
        "gpfs",
        "fuse.s3fs",
        "fuse.gcsfuse",
        "fuse.goofys",
        "fuse.juicefs",
        "fuse.mountpoint-s3",
    }
)


def storage_problem(path: str | None, *, field: str, alive_nodes: int, mounts: str = "") -> str | None:
    """Why ``path`` cannot hold the checkpoints of a run on ``alive_nodes`` nodes, or None when it can.

    Ray Train and Tune write each checkpoint from the node that made it and read it back from any other:
    with more than one node they need storage every node reaches, a URI (``s3://``, ``gs://``, ...) or a
    directory on a network filesystem (``mounts`` is ``/proc/mounts``'s text). Nodes sharing one machine
    count too: Ray cannot tell a shared disk from a local one but by its filesystem.
    """
    if alive_nodes <= 1 or (path and "://" in path and not path.startswith("file://")):
        return None
    local = os.path.abspath(os.path.expanduser(path.removeprefix("file://"))) if path else None
    if local and _mount_type(local, mounts) in NETWORK_FILESYSTEMS:
        return None
    where = f"{local!r} is a local directory" if local else "it is unset (Ray's default is a local directory)"
    return (
        f"{field}: {where}, but this Ray cluster has {alive_nodes} nodes and each would keep its checkpoints "
        f"on its own disk; set {field} to shared storage every node reaches: s3://bucket/prefix (S3, MinIO) "
        "or a directory on NFS mounted on every node"
    )


def node_cpus() -> float:
    """The CPUs of the connected cluster's largest alive node: the most one process, or one Ray Train
    worker, can use (a request for the whole cluster's CPUs would wait for a node that size forever)."""
    import ray

    cpus = [node.get("Resources", {}).get("CPU", 0.0) for node in ray.nodes() if node.get("Alive")]
    return max(cpus, default=1.0) or 1.0


def require_shared_storage(path: str | None, *, field: str) -> None:
    """``SharedStorageError`` up front, not at the first checkpoint, when the connected cluster has more
    than one alive node and ``path`` is node-local (``storage_problem``)."""
    import ray

    alive = sum(1 for node in ray.nodes() if node.get("Alive"))
    mounts = ""
    if alive > 1:
        with contextlib.suppress(OSError):  # not Linux: only URIs count as shared
            mounts = Path("/proc/mounts").read_text()
    problem = storage_problem(path, field=field, alive_nodes=alive, mounts=mounts)
    if problem:
        raise SharedStorageError(problem)


def _mount_type(path: str, mounts: str) -> str | None:
    """The filesystem type of the longest mount point in ``mounts`` (``/proc/mounts``) holding ``path``."""
    best, kind = "", None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, kind = point, fields[2]
    return kind


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
