"""cluster.yaml, the Ray cluster launcher's config: valid for Ray's own launcher, and safe as written."""

from __future__ import annotations

import copy

import pytest
import yaml

from tests.deploy.conftest import ROOT


@pytest.fixture(scope="module")
def cluster() -> dict:
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())


def test_ray_launcher_accepts_cluster_yaml(cluster):
    """The checks `ray up` runs before it contacts AWS: defaults filled in, then the JSON schema."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(copy.deepcopy(cluster)))


def test_launcher_schema_rejects_an_unknown_key(cluster):
    """The validation above is strict: a misspelt node-type key is an error, not ignored."""
    import jsonschema
    from ray.autoscaler._private.util import prepare_config, validate_config

    bad = copy.deepcopy(cluster)
    bad["available_node_types"]["cpu_worker"]["min_worker"] = 1
    with pytest.raises(jsonschema.ValidationError, match="min_worker"):
        validate_config(prepare_config(bad))


def test_node_types_head_cpu_and_gpu_with_autoscaling_bounds(cluster):
    types = cluster["available_node_types"]
    assert cluster["head_node_type"] in types
    cpu, gpu = types["cpu_worker"], types["gpu_worker"]
    assert cpu["resources"].get("GPU", 0) == 0 and gpu["resources"]["GPU"] >= 1
    for node in (cpu, gpu):
        assert 0 <= node["min_workers"] < node["max_workers"] <= cluster["max_workers"]


def test_images_use_the_locked_ray_version(cluster, locked_ray_version):
    gpu_image = cluster["available_node_types"]["gpu_worker"]["docker"]["worker_image"]
    images = [cluster["docker"]["image"], gpu_image]
    assert all(image.startswith(f"rayproject/ray:{locked_ray_version}-py311") for image in images), images


def test_nodes_install_the_project_from_the_lock_file(cluster):
    setup = " ; ".join(cluster["setup_commands"] + cluster["head_setup_commands"])
    assert "uv sync --frozen" in setup
    assert cluster["file_mounts"]["~/automl"] == "."
    assert ".gitignore" in cluster["rsync_filter"]  # no .venv, runs/ or data uploaded


def test_every_node_starts_ray_with_token_auth_from_the_venv(cluster):
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = next(c for c in cluster[key] if "ray start" in c)
        assert "RAY_AUTH_MODE=token" in start, key
        assert "PATH=$HOME/automl/.venv/bin:$PATH" in start, key  # jobs' `python` is the venv's
        assert "--metrics-export-port=8080" in start, key
    assert cluster["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"


def test_every_node_exports_the_environment_file_before_ray_starts(cluster):
    """Endpoints and secrets reach every Ray process from a file the operator keeps, not from the YAML."""
    assert cluster["file_mounts"]["~/.automl/cluster.env"] == "~/.automl/cluster.env"
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = next(c for c in cluster[key] if "ray start" in c)
        assert start.index("set -a; . ~/.automl/cluster.env; set +a;") < start.index("ray start"), key
    example = (ROOT / "deploy" / "cluster.env.example").read_text()
    assert "MLFLOW_TRACKING_URI=" in example and "REDIS_URL=" in example


def test_dashboard_and_job_api_listen_on_the_heads_loopback_only(cluster):
    head = next(c for c in cluster["head_start_ray_commands"] if "ray start" in c)
    assert "--dashboard-host=127.0.0.1" in head
    assert "--dashboard-port=8265" in head  # the remote port `ray dashboard cluster.yaml` forwards
    rules = cluster["provider"]["security_group"]["IpPermissions"]
    assert [(r["FromPort"], r["ToPort"]) for r in rules] == [(22, 22)]
    assert all(ip["CidrIp"] != "0.0.0.0/0" for r in rules for ip in r["IpRanges"])
