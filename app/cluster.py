"""Connecting to Ray: an existing cluster when an address is given, else a local Ray of our own.

Without an address (``RayConfig.address`` or ``RAY_ADDRESS``) a private local Ray starts
(``address="local"``), never the cluster some ``ray start`` last recorded on the machine; it listens on
loopback only, and a watchdog stops its processes at once if this process dies without shutting it
down. With an address the connection passes no local-only options, and an address nobody answers on is
one error within seconds instead of minutes of retries.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from urllib.parse import urlsplit

from app.config import RayConfig

# Ray decides its node IP at call time from this flag: off, every process of a local Ray binds
# 127.0.0.1 (the dashboard agent otherwise listens on all interfaces).
_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
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


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
