"""Connecting to Ray: an existing cluster when an address is given, else a local one."""

from __future__ import annotations

import os

from app.config import RayConfig


def connect(config: RayConfig | None = None) -> None:
    """``ray.init`` once: to ``config.address`` / ``RAY_ADDRESS`` if set, else a local Ray."""
    import ray

    if ray.is_initialized():
        return
    config = config or RayConfig()
    address = config.address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(
            num_cpus=config.num_cpus, num_gpus=config.num_gpus, include_dashboard=False, log_to_driver=False
        )
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = False
