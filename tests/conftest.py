"""Shared fixtures: real services started for the test session and stopped after it."""

from __future__ import annotations

import os
import uuid

import pytest

from app.testing import ray_cluster, services


@pytest.fixture(scope="session")
def ray_session():
    """An in-process Ray cluster with 2 CPUs (a little over for fractional trial resources)."""
    import ray
    import ray._private.ray_constants as ray_constants

    os.environ.pop("RAY_ADDRESS", None)
    ray_constants.RAY_ENABLE_UV_RUN_RUNTIME_ENV = False  # as app.cluster.start_local: workers share this venv
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def ray_head():
    """A separate ``ray start --head`` cluster on non-default ports, for CLI and job-submission tests."""
    with ray_cluster.ray_head(num_cpus=2) as head:
        yield head


@pytest.fixture(scope="session")
def s3_endpoint():
    """moto's S3 server over real HTTP on a free loopback port."""
    with services.moto_s3() as endpoint:
        yield endpoint


@pytest.fixture
def s3_bucket(s3_endpoint):
    """A fresh, uniquely named bucket on the moto endpoint: no test sees another's objects."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3_endpoint.client().create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def redis_url():
    """The machine's Redis if it answers, else a redis-server started for the session."""
    with services.redis_server(url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")) as url:
        yield url


@pytest.fixture(scope="session")
def mlflow_url():
    """A real ``mlflow server`` process with a SQLite backend in a temp dir."""
    with services.mlflow_server() as url:
        yield url
