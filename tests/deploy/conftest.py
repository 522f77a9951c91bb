"""What the deployment-file tests share: the repository root and the Ray version the lock file pins."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def locked_ray_version() -> str:
    """The ``ray`` version in uv.lock: every image and install in deploy files must use this one."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    (version,) = {p["version"] for p in lock["package"] if p["name"] == "ray"}
    return version
