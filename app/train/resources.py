"""How many CPUs, threads and GPUs a training run's workers get, and the error when GPUs are missing."""

from __future__ import annotations


class GPUUnavailableError(RuntimeError):
    """A GPU was requested that the cluster or the installed library build cannot provide."""


def worker_cpus(*, requested: float, num_workers: int, cluster_cpus: float) -> float:
    """CPUs reserved per worker: the request, capped so that one CPU stays free for Ray Data's tasks.

    Ray Data read and map tasks need a whole CPU each; when the workers reserve every CPU, a lazy
    dataset never starts (field notes: 2 workers x 1 CPU on 2 CPUs hangs in ReadFiles).
    """
    spare = max(cluster_cpus - 1.0, 0.0)
    cap = spare / num_workers if spare > 0 else cluster_cpus / (2 * num_workers)
    return round(max(min(requested, cap), 0.05), 3)


def worker_threads(*, requested_threads: int | None, cpus_per_worker: float) -> int:
    """Library threads per worker: as requested, else the worker's CPU share, at least 1."""
    return requested_threads or max(1, int(cpus_per_worker))


def check_gpus(*, num_workers: int, cluster_gpus: float) -> None:
    """Fail early, with the numbers, when the cluster has fewer GPUs than workers."""
    if cluster_gpus < num_workers:
        raise GPUUnavailableError(
            f"use_gpu=True needs one GPU per worker ({num_workers}), but the Ray cluster has "
            f"{cluster_gpus:g} GPU(s); drop --gpu or connect to a cluster with GPUs"
        )
