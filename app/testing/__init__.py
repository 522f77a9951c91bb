"""Real services for tests and benchmarks: each starts a process on a free loopback port and stops it."""

from app.testing.services import (
    free_port,
    mlflow_server,
    moto_s3,
    ray_head,
    redis_server,
)

__all__ = ["free_port", "mlflow_server", "moto_s3", "ray_head", "redis_server"]
