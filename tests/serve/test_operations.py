"""Serving under operations: the champion alias moving under load, a replica killed under load, the
guide's example 5 as a script, and `serve deploy` / `serve build` against a `ray start --head` cluster
with metrics read from Ray's metrics endpoint and an API key."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from app.testing import ray_cluster, services
from app.testing.wait import wait_until
from tests.serve.conftest import ROOT, Traffic

pytestmark = pytest.mark.slow


def test_moving_the_champion_alias_switches_the_served_version_without_a_failed_request(
    service, family_dirs, rows, mlflow_url, tmp_path
):
    from app.config import TrackingConfig
    from app.tracking.registry import ModelRegistry
    from app.tracking.tracker import MLflowTracker

    frame, records = rows
    name = f"serve-alias-{os.getpid()}-{int(time.time())}"
    tracker = MLflowTracker(TrackingConfig(tracking_uri=mlflow_url, experiment_name=name), run_dir=tmp_path)
    tracker.start_run("v1")
    tracker.log_model(family_dirs["xgboost"], registered_model_name=name, input_example=frame.head(3))
    tracker.end_run()
    service.deploy(f"models:/{name}@champion", tracking_uri=mlflow_url, model_poll_s=0.5)
    with Traffic(service.post, records) as traffic:
        traffic.wait_for(lambda r: len(r) >= 20, 60)
        tracker.start_run("v2")
        tracker.log_model(family_dirs["lightgbm"], registered_model_name=name, input_example=frame.head(3))
        tracker.end_run()
        ModelRegistry(tracking_uri=mlflow_url).promote(
            name, version="2", candidate_value=1.0, champion_value=0.5
        )
        traffic.wait_for(lambda r: sum(v == "2" for _, v in r) >= 20, 90)
    statuses = [s for s, _ in traffic.results]
    versions = [v for _, v in traffic.results]
    assert statuses == [200] * len(statuses)
    assert versions[0] == "1" and versions[-1] == "2"
    assert "1" not in versions[versions.index("2") :]  # one replica: never back to the old version


def test_a_killed_replica_is_replaced_and_almost_no_request_fails(service, family_dirs, rows):
    import ray
    from ray import serve

    _, records = rows
    service.deploy(family_dirs["xgboost"], deployment={"num_replicas": 2, "autoscaling_config": None})

    def replicas():
        return [a for a in ray.util.list_named_actors(all_namespaces=True) if "SERVE_REPLICA" in a["name"]]

    def replaced(victim_name):
        running = (
            serve.status().applications["automl"].deployments["ModelServer"].replica_states.get("RUNNING", 0)
        )
        return running == 2 and victim_name not in [a["name"] for a in replicas()]

    with Traffic(service.post, records) as traffic:
        traffic.wait_for(lambda r: len(r) >= 200, 60)
        victim = replicas()[0]
        ray.kill(ray.get_actor(victim["name"], namespace=victim["namespace"]), no_restart=True)
        # Steady load until Serve has replaced the replica, then on through 2,000 more requests: the
        # share of failures is taken over a run that spans the loss and the recovery (a slow CI
        # machine gets more time, never fewer requests).
        traffic.wait_for(lambda r: replaced(victim["name"]), 120)
        replaced_at = len(traffic.results)
        traffic.wait_for(lambda r: len(r) >= replaced_at + 2000, 300)
    failed = sum(s != 200 for s, _ in traffic.results)
    assert failed / len(traffic.results) < 0.001, (failed, len(traffic.results))


def test_guide_example_5_runs_as_a_script(family_dirs, rows, redis_url, tmp_path):
    from urllib.parse import urlparse

    _, records = rows
    port = services.free_port()
    redis = urlparse(redis_url)
    cmd = [
        sys.executable, str(ROOT / "examples" / "guide_example5.py"), str(family_dirs["xgboost"]),
        "--redis-host", redis.hostname, "--redis-port", str(redis.port), "--port", str(port),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True, cwd=tmp_path
    )
    try:
        wait_until(
            lambda: _answers(f"http://127.0.0.1:{port}/readyz"),
            timeout_s=120,
            interval_s=0.5,
            what="the example's /readyz",
            proc=proc,
        )
        body = _post(f"http://127.0.0.1:{port}/predict", {"dataframe_records": records[:2]})
        assert body["model"]["version"] == "v1.2.3" and len(body["predictions"]) == 2
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
        assert "application built: Application" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_serve_deploy_and_serve_build_against_a_ray_head_with_metrics_and_an_api_key(
    ray_head, family_dirs, rows, tmp_path
):
    _, records = rows
    port = services.free_port()
    config = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    app = config["applications"][0]
    app["args"].update(model=str(family_dirs["xgboost"]), api_key_env="AUTOML_TEST_KEY")
    app["deployments"][0]["ray_actor_options"].update(
        num_cpus=0.25, runtime_env={"env_vars": {"AUTOML_TEST_KEY": "k-7f3a9c"}}
    )
    config["http_options"]["port"] = port
    path = tmp_path / "serve_config.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, **ray_head.env(), "RAY_DASHBOARD_ADDRESS": ray_head.dashboard_url}
    serve_bin = str(Path(sys.executable).with_name("serve"))
    try:
        subprocess.run([serve_bin, "deploy", str(path)], env=env, check=True, timeout=120, cwd=ROOT)
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(f"{url}/readyz"), timeout_s=180, interval_s=0.5, what=f"{url}/readyz")
        with pytest.raises(urllib.error.HTTPError) as denied:
            _post(f"{url}/predict", {"dataframe_records": records[:1]})
        assert denied.value.code == 401
        body = _post(f"{url}/predict", {"dataframe_records": records[:1]}, headers={"X-API-Key": "k-7f3a9c"})
        body = _post(f"{url}/predict", {"dataframe_records": records[:1]}, headers={"X-API-Key": "k-7f3a9c"})
        assert len(body["predictions"]) == 1

        names = _metric_names(ray_head, ("ray_automl_requests_total", "ray_automl_cache_hits_total"))
        assert {"ray_automl_requests_total", "ray_automl_cache_hits_total"} <= names
        # What the service writes (replica and proxy logs) never holds the key. Ray's controller logs the
        # deployment's runtime_env, which is why the README says to give replicas the key through the
        # nodes' environment or a Kubernetes Secret, not serve_config.yaml (as this test does).
        serve_logs = Path(ray_head.temp_dir, "session_latest", "logs", "serve")
        written = [p for p in serve_logs.glob("*.log") if p.name.startswith(("replica_", "proxy_"))]
        assert written and not any("k-7f3a9c" in p.read_text(errors="ignore") for p in written)

        built = tmp_path / "built.yaml"
        subprocess.run(
            [serve_bin, "build", "app.serve:service", "-o", str(built)],
            env=env, check=True, timeout=120, cwd=ROOT,
        )  # fmt: skip
        from app.serve.deploy import load_serve_config

        schema = load_serve_config(built, model=str(family_dirs["lightgbm"]))
        assert schema.applications[0].args["model"] == str(family_dirs["lightgbm"])
        assert schema.applications[0].deployments[0].name == "ModelServer"
    finally:
        subprocess.run([serve_bin, "shutdown", "-y"], env=env, timeout=120, check=False)


def test_direct_ingress_answers_on_the_replica_port_clients_are_told_to_use(family_dirs, rows, tmp_path):
    """The README's settings for production traffic: with ``RAY_SERVE_THROUGHPUT_OPTIMIZED=1`` the replica
    listens on the pinned port itself; ``/predict`` (answered by the ingress before FastAPI) and the
    FastAPI routes (``/model``, ``/openapi.json``) answer there, bad rows included."""
    _, records = rows
    direct = services.free_port()
    env = {
        "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
        "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": str(direct),
        "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": str(direct + 20),
    }
    config = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    app = config["applications"][0]
    app["args"].update(model=str(family_dirs["xgboost"]))
    deployment = app["deployments"][0]
    deployment.pop("autoscaling_config")
    deployment.update(num_replicas=1)
    deployment["ray_actor_options"].update(num_cpus=0.5)
    config["http_options"]["port"] = services.free_port()
    path = tmp_path / "serve_config.yaml"
    path.write_text(yaml.safe_dump(config))
    serve_bin = str(Path(sys.executable).with_name("serve"))
    with ray_cluster.ray_head(num_cpus=2, env=env) as head:
        run_env = {**os.environ, **head.env(), **env, "RAY_DASHBOARD_ADDRESS": head.dashboard_url}
        try:
            subprocess.run([serve_bin, "deploy", str(path)], env=run_env, check=True, timeout=120, cwd=ROOT)
            url = f"http://127.0.0.1:{direct}"
            wait_until(lambda: _answers(f"{url}/readyz"), timeout_s=180, interval_s=0.5, what=f"{url}/readyz")
            for _ in range(2):
                body = _post(f"{url}/invocations", {"dataframe_records": records[:3]})
                assert len(body["predictions"]) == 3 and "proba_1" in body["predictions"][0]
            with pytest.raises(urllib.error.HTTPError) as bad:
                _post(f"{url}/predict", {"dataframe_records": [{**records[0], "x1": "abc"}]})
            assert bad.value.code == 422 and "x1" in bad.value.read().decode()
            with urllib.request.urlopen(f"{url}/openapi.json", timeout=10) as resp:
                assert {"/predict", "/invocations", "/model"} <= set(json.loads(resp.read())["paths"])
            with urllib.request.urlopen(f"{url}/model", timeout=10) as resp:
                assert json.loads(resp.read())["family"] == "xgboost"
        finally:
            subprocess.run([serve_bin, "shutdown", "-y"], env=run_env, timeout=120, check=False)


def _metric_names(head, wanted, timeout_s: float = 90) -> set[str]:
    """Metric names on the head's Prometheus endpoint(s), once every one of ``wanted`` shows."""
    discovery = Path(head.temp_dir, "session_latest", "prom_metrics_service_discovery.json")
    names: set[str] = set()

    def all_shown() -> bool:
        targets = [t for group in json.loads(discovery.read_text()) for t in group["targets"]]
        for target in targets:
            try:
                text = urllib.request.urlopen(f"http://{target}/metrics", timeout=5).read().decode()
            except OSError:
                continue
            names.update(
                line.split("{")[0].split(" ")[0]
                for line in text.splitlines()
                if line.startswith("ray_automl")
            )
        return set(wanted) <= names

    try:
        wait_until(
            all_shown, timeout_s=timeout_s, interval_s=2, what=f"{sorted(wanted)} on the head's /metrics"
        )
    except TimeoutError as exc:
        pytest.fail(f"{exc}; shown: {sorted(names)}")
    return names


def _post(url, body, headers=None):
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json", **(headers or {})}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def _answers(url: str) -> bool:
    """True once ``url`` answers a GET without an HTTP error (``urlopen`` raises until then)."""
    with urllib.request.urlopen(url, timeout=2):
        return True
