"""Two Ray nodes on this machine (``ray start --head`` and ``ray start --address`` with a custom resource):
a search with trials on both and its storage on (moto) S3; a Ray Train run with a worker on each that
resumes from its S3 checkpoint on the first node once the second is lost; a node-local storage path
refused up front on more than one node."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from app.cluster import storage_problem
from app.data.synthetic import make_frame, write_parquet
from app.testing import ray_cluster
from app.testing.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]
# The GCS declares a lost node dead after 3 missed 1-second health checks instead of 5 missed 3-second ones.
FAST_NODE_DEATH = {
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}
# Logical CPUs: each node holds one 0.5-CPU Train worker or one 1.5-CPU trial and keeps a CPU for Ray Data.
NODE_CPUS = 2
SECOND_NODE = {"second_node": 1}


def test_a_local_storage_path_is_refused_on_more_than_one_node():
    problem = storage_problem("/data/runs", field="train.storage_path", alive_nodes=2)
    assert problem and "train.storage_path" in problem and "'/data/runs' is a local directory" in problem
    assert "s3://" in problem and "NFS" in problem and "2 nodes" in problem
    unset = storage_problem(None, field="search.storage_path", alive_nodes=3)
    assert unset and "unset" in unset


def test_uris_nfs_mounts_and_single_nodes_are_accepted():
    mounts = "srv:/export /mnt/shared nfs4 rw 0 0\n/dev/sda1 / ext4 rw 0 0\n"
    assert storage_problem("s3://bucket/runs", field="f", alive_nodes=4) is None
    assert storage_problem("gs://bucket/runs", field="f", alive_nodes=4) is None
    assert storage_problem("/mnt/shared/runs", field="f", alive_nodes=2, mounts=mounts) is None
    assert storage_problem("/mnt/sharedx/runs", field="f", alive_nodes=2, mounts=mounts) is not None
    assert storage_problem("file:///mnt/other", field="f", alive_nodes=2, mounts=mounts) is not None
    assert storage_problem("/tmp/runs", field="f", alive_nodes=1) is None


@pytest.fixture(scope="module")
def node_env(s3_endpoint) -> dict[str, str]:
    """Every node reaches S3 with credentials of its own, as a cluster's nodes do (an instance role, or
    these variables): a Ray Train run the driver starts builds its storage filesystem on the node its
    controller lands on."""
    return {**FAST_NODE_DEATH, **s3_endpoint.env()}


@pytest.fixture(scope="module")
def head(node_env):
    with ray_cluster.ray_head(num_cpus=NODE_CPUS, dashboard=False, env=node_env) as started:
        yield started


@pytest.fixture(scope="module")
def second_node(head, node_env):
    """The second node, shared by the tests in file order; the last one takes it down.

    One node for the module: besides saving a start, a node started after another had been stopped
    timed out registering with the GCS ("The current node timed out during startup") twice here."""
    with ray_cluster.ray_node(head, num_cpus=NODE_CPUS, resources=SECOND_NODE, env=node_env) as node:
        yield node


@pytest.fixture
def env(head, s3_endpoint):
    return {
        **os.environ,
        **head.env(),
        **s3_endpoint.env(),
        "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0",
        "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.25",
    }


def _actor_names(node: ray_cluster.RayNode) -> set[str]:
    """Actor classes whose workers ran on ``node``, from the worker logs in its own temp dir."""
    names = set()
    for log in Path(node.temp_dir).glob("session_*/logs/worker-*.out"):
        names.update(
            line.split(":actor_name:", 1)[1].strip()
            for line in log.read_text(errors="replace").splitlines()
            if ":actor_name:" in line
        )
    return names


def _keys(s3_endpoint, bucket: str) -> list[str]:
    pages = s3_endpoint.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("multinode") / "data"
    write_parquet(make_frame(1500, task="binary"), data, files=2)
    return data


@pytest.mark.slow
def test_a_local_storage_path_is_refused_before_the_data_is_read(second_node, env, data_dir, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "train",
            str(data_dir),
            "--target",
            "y",
            "--out",
            str(tmp_path / "m"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("error: train.storage_path: ") and "this Ray cluster has 2 nodes" in error
    assert "s3://bucket/prefix" in error and "NFS" in error
    assert not (tmp_path / "m" / "checkpoints").exists() and not (tmp_path / "m" / "metadata.json").exists()


@pytest.mark.slow
def test_a_search_runs_trials_on_both_nodes_with_its_storage_on_s3(
    second_node, env, s3_endpoint, s3_bucket, data_dir, tmp_path
):
    config = tmp_path / "automl.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data": {"s3": {"endpoint_url": s3_endpoint.endpoint_url}},
                "search": {"storage_path": f"s3://{s3_bucket}/tune", "cpus_per_trial": 1.5},
            }
        )
    )
    out = tmp_path / "fit"
    args = ["--target", "y", "--config", config, "--out", out, "--families", "xgboost", "--max-rounds", "40"]
    args += ["--num-samples", "4", "--max-concurrent", "2", "--cv-folds", "0", "--time-budget", "60"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "fit", str(data_dir), *map(str, args)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-4000:]
    assert _trials_on(second_node), _actor_names(second_node)  # trial processes ran on the second node
    # Each trial's persisted model and the pointer naming it, on S3 (app.search.candidates)
    pointers = [k for k in _keys(s3_endpoint, s3_bucket) if k.endswith("/best/best.json")]
    assert pointers and all(k.startswith("tune/search/") for k in pointers)
    assert "xgboost" in (out / "leaderboard.csv").read_text()
    assert (out / "model" / "metadata.json").exists()  # chosen from the trials' persisted models on S3


@pytest.mark.slow
def test_a_row_ladder_over_the_memory_limit_samples_searches_on_both_nodes_and_grows_on_s3(
    second_node, env, s3_endpoint, s3_bucket, data_dir, tmp_path
):
    """Data over ``in_memory_limit_bytes`` with the row ladder: Ray Data draws the sample, trials on both
    nodes train on its rungs (prefixes shared through the object store), and the chosen model is trained
    on every row on Ray Train, its run stored on S3 beside the search's."""
    config = tmp_path / "automl.yaml"
    search = {"storage_path": f"s3://{s3_bucket}/ladder", "cpus_per_trial": 1.5}
    search |= {
        "in_memory_limit_bytes": 20_000,
        "row_ladder": True,
        "first_rung_rows": 100,
        "ensemble_size": 1,
    }
    config.write_text(
        yaml.safe_dump({"data": {"s3": {"endpoint_url": s3_endpoint.endpoint_url}}, "search": search})
    )
    out = tmp_path / "fit"
    args = ["--target", "y", "--config", config, "--out", out, "--families", "xgboost", "--max-rounds", "40"]
    args += ["--num-samples", "6", "--max-concurrent", "2", "--scheduler", "fifo"]
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", "fit", str(data_dir), *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert _trials_on(second_node), _actor_names(second_node)
    result = json.loads((out / "fit.json").read_text())["result"]
    rungs = {r["rows"] for r in result["search"]["row_ladder"]}
    assert 100 in rungs and max(rungs) < 1500  # a sample of what fits in 20,000 bytes
    (grown,) = result["refit"]["all_rows"]
    assert grown["trainer"] == "ray_train" and grown["rows"] > max(rungs)
    assert any(k.startswith("ladder/refit/") for k in _keys(s3_endpoint, s3_bucket))  # its Ray Train run
    assert "rows: " in proc.stdout and (out / "model" / "metadata.json").exists()


@pytest.mark.slow
def test_training_on_both_nodes_resumes_from_s3_after_the_second_node_is_lost(
    second_node, env, s3_endpoint, s3_bucket
):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.cluster.drive",
            "train",
            f"s3://{s3_bucket}/train",
            s3_endpoint.endpoint_url,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(
            lambda: any("/checkpoint_" in k for k in _keys(s3_endpoint, s3_bucket)),
            timeout_s=600,
            interval_s=0.3,
            what="a checkpoint on S3",
            proc=proc,  # its exit fails the wait with its output
        )
    except (RuntimeError, TimeoutError) as exc:
        proc.kill()
        pytest.fail(str(exc))
    assert "RayTrainWorker" in _actor_names(second_node)  # one worker ran there
    second_node.kill()
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err[-4000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result["num_workers"] == 2 and result["rounds"] == 60
    assert result["resumed_from_round"] >= 10  # restored from a checkpoint on S3, not started over
    assert result["checkpoint_path"].startswith(f"{s3_bucket}/train/")


def _trials_on(node: ray_cluster.RayNode) -> bool:
    """Whether a Tune trial's process ran on ``node`` (any actor but Ray Train's own)."""
    return bool(_actor_names(node) - {"PreemptionWatcher", "RayTrainWorker", "TrainController"})
