"""Dockerfile and docker-compose.yml, checked statically (no Docker engine here): hadolint, the Compose
specification's JSON schema (vendored in check-jsonschema), and what the files promise about security."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import ROOT

BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(BIN)) or shutil.which(name)
    assert path, f"{name} is not installed: uv sync --frozen --extra dev"
    return path


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_hadolint_passes_the_dockerfile():
    done = subprocess.run(
        [_tool("hadolint"), "--failure-threshold", "info", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_builds_on_the_locked_ray_image_from_the_lock_file_as_non_root(locked_ray_version):
    text = (ROOT / "Dockerfile").read_text()
    assert f"ARG BASE_IMAGE=rayproject/ray:{locked_ray_version}-py311\n" in text
    assert re.search(r"^RUN uv sync --frozen", text, re.M)
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in {"0", "root"}


def _check_compose(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_compose_file_matches_the_compose_specification():
    done = _check_compose(ROOT / "docker-compose.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_schema_check_rejects_a_misspelt_key(tmp_path, compose):
    compose["services"]["redis"]["comand"] = "redis-server"
    bad = tmp_path / "docker-compose.yml"
    bad.write_text(yaml.safe_dump(compose))
    done = _check_compose(bad)
    assert done.returncode != 0 and "comand" in done.stdout + done.stderr


def test_compose_has_every_service(compose):
    assert set(compose["services"]) >= {
        "ray-head",
        "redis",
        "postgres",
        "minio",
        "mlflow",
        "prometheus",
        "grafana",
    }
    mlflow = " ".join(compose["services"]["mlflow"]["command"].split())
    assert "--backend-store-uri postgresql://" in mlflow and "--artifacts-destination s3://" in mlflow
    assert compose["services"]["mlflow"]["environment"]["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"


def test_redis_uses_the_guides_cache_settings(compose):
    command = compose["services"]["redis"]["command"]
    assert "--maxmemory 2gb --maxmemory-policy allkeys-lru" in " ".join(command.split())
    assert "--requirepass ${REDIS_PASSWORD:?" in command


def test_published_ports_bind_the_hosts_loopback_only(compose):
    published = [p for s in compose["services"].values() for p in s.get("ports", [])]
    assert published and all(str(p).startswith("127.0.0.1:") for p in published), published


def test_monitoring_files_are_mounted(compose):
    mounts = [v.split(":")[0] for s in compose["services"].values() for v in s.get("volumes", [])]
    local = [m for m in mounts if m.startswith("./")]
    assert {"./deploy/prometheus", "./deploy/grafana", "./deploy/grafana/provisioning"} <= set(local)
    assert all((ROOT / m).exists() for m in local)
    assert (ROOT / "deploy/grafana/automl-dashboard.json").is_file()


def test_secrets_come_from_the_environment_and_env_example_lists_them(compose):
    text = (ROOT / "docker-compose.yml").read_text()
    needed = set(re.findall(r"\$\{(\w+):\?", text))
    example = {
        line.split("=")[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert needed and needed <= example, needed - example
    assert not re.search(r"\$\{\w+:-", text)  # no default values for secrets
