"""Real services for tests and benchmarks: each starts a process on a free loopback port and stops it."""

from app.testing.ray_cluster import ray_head, ray_node
from app.testing.services import free_port, mlflow_server, moto_s3, prometheus, redis_server

__all__ = ["free_port", "mlflow_server", "moto_s3", "prometheus", "ray_head", "ray_node", "redis_server"]
