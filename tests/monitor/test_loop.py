"""The whole loop on a `ray start --head` cluster, driven the way an operator would: `automl fit` registers
a champion, `serve deploy` serves `models:/NAME@champion` with monitoring and retraining on, clients send
traffic whose features and labels have moved and report the labels on /feedback → the monitor submits
`jobs/retrain.py` as a Ray job → the challenger beats the champion on held-out fresh rows and is promoted
→ the replicas answer with the new version, and no request fails along the way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from app.testing import services
from app.testing.wait import wait_until
from tests.serve.conftest import Traffic

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def frame(n: int, *, seed: int, fresh: bool) -> pd.DataFrame:
    """Old data: y follows x1. Fresh data: x1 has moved and y follows x2 (the champion is now wrong)."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(2.0 if fresh else 0.0, 1.0, n)
    x2 = rng.normal(0.0, 1.0, n)
    y = ((x2 if fresh else x1) + rng.normal(0, 0.3, n) > 0).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "x3": rng.normal(0, 1, n), "y": y})


def test_drift_retrains_promotes_and_serves_the_challenger_without_a_failed_request(
    ray_head, mlflow_url, tmp_path
):
    from ray.job_submission import JobSubmissionClient

    from app.tracking.registry import ModelRegistry
    from app.train.metrics import get_metric

    name = f"loop-{os.getpid()}-{int(time.time())}"
    old, fresh = tmp_path / "old.parquet", tmp_path / "fresh.parquet"
    frame(4_000, seed=0, fresh=False).to_parquet(old)
    fresh_rows = frame(4_000, seed=1, fresh=True)
    fresh_rows.to_parquet(fresh)
    env = {
        **os.environ,
        **ray_head.env(),
        "RAY_DASHBOARD_ADDRESS": ray_head.dashboard_url,
        "MLFLOW_TRACKING_URI": mlflow_url,
    }
    bin_dir = Path(sys.executable).parent

    # 1. The champion: `automl fit` with a config that registers it (the first version is champion).
    fit_config = tmp_path / "automl.yaml"
    fit_config.write_text(yaml.safe_dump({"tracking": {"registered_model_name": name}}))
    subprocess.run(
        [
            str(bin_dir / "automl"), "fit", str(old), "--target", "y", "--config", str(fit_config),
            "--out", str(tmp_path / "v1"), "--time-budget", "90", "--num-samples", "2",
            "--families", "xgboost", "--no-refit",
        ],
        env=env, check=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    registry = ModelRegistry(tracking_uri=mlflow_url)
    assert registry.version_for(name, "champion").version == "1"

    retrain_config = tmp_path / "retrain.yaml"
    retrain_config.write_text(yaml.safe_dump({"search": {"num_samples": 2, "families": ["xgboost"]}}))

    # 2. Serve it from serve_config.yaml, following the champion alias, monitored, retraining on.
    port = services.free_port()
    config = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    app = config["applications"][0]
    app["args"].update(
        model=f"models:/{name}@champion",
        tracking_uri=mlflow_url,
        model_poll_s=1,
        monitor={
            "sample_rate": 1.0,
            "window_size": 500,
            "min_window": 100,
            "min_labels": 100,
            "check_every_s": 2,
            "state_path": str(tmp_path / "monitor"),
            "retrain": {
                "enabled": True,
                "data": str(fresh),
                "target": "y",
                "after_checks": 2,
                "cooldown_s": 3600,
                "job_address": ray_head.dashboard_url,
                "working_dir": str(ROOT),
                "tracking_uri": mlflow_url,
                "time_budget_s": 90,
                "out": str(tmp_path / "retrain"),
                "config": str(retrain_config),
            },
        },
    )
    app["deployments"][0]["ray_actor_options"]["num_cpus"] = 0.25
    app["deployments"][0]["autoscaling_config"] = {"min_replicas": 1, "max_replicas": 1}
    config["http_options"]["port"] = port
    path = tmp_path / "serve_config.yaml"
    path.write_text(yaml.safe_dump(config))
    serve_bin = str(bin_dir / "serve")
    url = f"http://127.0.0.1:{port}"
    jobs = JobSubmissionClient(ray_head.dashboard_url)
    records = json.loads(fresh_rows.drop(columns=["y"]).head(500).to_json(orient="records"))
    try:
        subprocess.run([serve_bin, "deploy", str(path)], env=env, check=True, timeout=120, cwd=ROOT)
        wait_until(
            lambda: urllib.request.urlopen(f"{url}/readyz", timeout=2).status == 200,
            timeout_s=180,
            interval_s=1,
            what=f"{url}/readyz",
        )
        with Traffic(lambda body: _post(f"{url}/predict", body), records, rows=5, pause_s=0.05) as client:
            # 3. Moved traffic, and its labels as a client reports them.
            labelled = fresh_rows.head(600)
            for start in range(0, len(labelled), 100):
                chunk = labelled.iloc[start : start + 100]
                items = [
                    {"row": row, "label": int(label)}
                    for row, label in zip(
                        json.loads(chunk.drop(columns=["y"]).to_json(orient="records")),
                        chunk["y"],
                        strict=True,
                    )
                ]
                status, _, body = _post(f"{url}/feedback", {"feedback": items})
                assert status == 200, body
            # 4. The monitor submits one retraining job, which promotes the challenger.
            job = wait_until(
                lambda: _retrain_jobs(jobs, f"{name}@1"), timeout_s=120, interval_s=1, what="a retraining job"
            )[0]
            assert job.metadata["stage"] == "retrain" and "drifted" in job.metadata["reason"]
            assert job.submission_id.startswith(f"retrain-{name}-1-")
            info = wait_until(
                lambda: (i := jobs.get_job_info(job.submission_id)).status.is_terminal() and i,
                timeout_s=420,
                interval_s=1,
                what="the retraining job to end",
            )
            logs = jobs.get_job_logs(job.submission_id)
            assert str(info.status) == "SUCCEEDED", logs[-3000:]
            outcome = json.loads(logs.strip().splitlines()[-1])
            assert outcome["promoted"] and outcome["version"] == "2", outcome
            gain = get_metric(outcome["metric"]).gain(outcome["challenger_value"], outcome["champion_value"])
            assert gain > 0, outcome  # on the same held-out fresh rows
            # 5. Serve follows the alias: version 2 answers.
            wait_until(
                lambda: sum(v == "2" for _, v in client.results) >= 20,
                timeout_s=120,
                interval_s=1,
                what="the new champion to answer",
            )
        statuses = [s for s, _ in client.results]
        assert statuses == [200] * len(statuses), [s for s in statuses if s != 200][:5]
        versions = [v for _, v in client.results]
        assert versions[0] == "1" and versions[-1] == "2"
        champion = registry.version_for(name, "champion")
        assert champion.version == "2"
        assert "drifted" in champion.tags["automl.retrain.reason"]
        assert champion.tags["promoted_by"] == "automl-retrain"
        old_version = registry.client.get_model_version(name, "1")  # the monitor's decision, on what it saw
        assert old_version.tags["automl.monitor.decision"] in ("submitted", "running", "cooldown")
        assert old_version.tags["automl.monitor.job_id"] == job.submission_id
        assert [j.submission_id for j in _retrain_jobs(jobs, f"{name}@1")] == [job.submission_id]  # one
    finally:
        subprocess.run([serve_bin, "shutdown", "-y"], env=env, timeout=120, check=False)


def _retrain_jobs(jobs, model: str) -> list:
    return [j for j in jobs.list_jobs() if (j.metadata or {}).get("model") == model]


def _post(url: str, body: dict) -> tuple[int, dict, object]:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode(errors="replace")
