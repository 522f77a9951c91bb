"""The retraining trigger's decisions: alert only when off, wait for persistence, one job at a time,
a cool-down after each, a reason that names what moved."""

from __future__ import annotations

import shlex
from pathlib import Path

from app.monitor.retrain import Retrainer
from app.serve_config import RetrainConfig

DRIFTED = {
    "features": {
        "amount": {"psi": 0.41, "ks": 0.3, "drifted": True},
        "city": {"psi": 0.01, "ks": None, "drifted": False},
    },
    "prediction_drift": {"drifted": False, "psi": 0.05},
    "performance": {"metric": "auc", "score": 0.71, "baseline": 0.8, "degraded": True},
}
QUIET = {
    "features": {},
    "prediction_drift": {"drifted": False, "psi": 0.0},
    "performance": {"degraded": False},
}


class Jobs:
    def __init__(self):
        self.submitted, self.state, self.now = [], "RUNNING", 1000.0

    def submit(self, entrypoint, metadata):
        self.submitted.append((entrypoint, metadata))
        return f"raysubmit_{len(self.submitted)}"


def retrainer(jobs: Jobs, **config) -> Retrainer:
    cfg = RetrainConfig(
        enabled=True, data="s3://b/fresh/", target="y", after_checks=2, cooldown_s=600, **config
    )
    return Retrainer(
        cfg,
        model="churn@3",
        registered_name="churn",
        submit=jobs.submit,
        status=lambda _: jobs.state,
        clock=lambda: jobs.now,
    )


def test_switched_off_it_only_alerts():
    jobs = Jobs()
    r = Retrainer(RetrainConfig(enabled=False), model="m@1", registered_name="m", submit=jobs.submit)
    assert r.decide(DRIFTED).decision == "alert_only" and not jobs.submitted


def test_persisting_drift_submits_one_job_with_the_reason_then_waits_for_it_and_the_cooldown():
    jobs = Jobs()
    r = retrainer(jobs)
    assert r.decide(DRIFTED).decision == "waiting"
    assert r.decide(QUIET) is None  # the streak starts again
    assert r.decide(DRIFTED).decision == "waiting"
    submitted = r.decide(DRIFTED)
    assert (submitted.decision, submitted.job_id) == ("submitted", "raysubmit_1")
    assert (
        "amount drifted (PSI 0.410, KS 0.300)" in submitted.reason
        and "auc 0.71 vs baseline 0.8" in submitted.reason
    )
    entrypoint, metadata = jobs.submitted[0]
    args = shlex.split(entrypoint)
    # No working_dir: the nodes have the project, and the job runs its installed jobs/retrain.py.
    assert args[0] == "python" and Path(args[1]).is_file() and args[1].endswith("jobs/retrain.py")
    assert args[2:4] == ["s3://b/fresh/", "--target"]
    assert args[args.index("--model-name") + 1] == "churn" and metadata["stage"] == "retrain"
    r.decide(DRIFTED)
    assert r.decide(DRIFTED).decision == "running"
    jobs.state = "SUCCEEDED"
    assert r.decide(DRIFTED).decision == "cooldown"
    jobs.now += 601
    assert r.decide(DRIFTED).decision == "submitted" and len(jobs.submitted) == 2


def test_a_failed_submission_is_a_decision_not_an_exception():
    def refuse(entrypoint, metadata):
        raise ConnectionError("no job API")

    r = Retrainer(
        RetrainConfig(enabled=True, data="d", target="y", after_checks=1),
        model="m@1",
        registered_name="m",
        submit=refuse,
    )
    decision = r.decide(DRIFTED)
    assert decision.decision == "failed" and "no job API" in decision.reason


def test_with_a_working_dir_the_job_runs_the_uploaded_script_with_the_jobs_config():
    r = retrainer(Jobs(), working_dir=".", config="automl.yaml")
    args = shlex.split(r.entrypoint("x drifted"))
    assert args[1] == "jobs/retrain.py" and args[args.index("--config") + 1] == "automl.yaml"
    assert args[args.index("--reason") + 1] == "x drifted"


def test_through_uv_the_job_gets_the_shared_job_environment_and_the_registry():
    root = Path(__file__).resolve().parents[2]
    r = retrainer(
        Jobs(),
        working_dir=str(root),
        python="uv run --frozen --extra all python",
        tracking_uri="http://mlflow:5000",
    )
    args = shlex.split(r.entrypoint("x drifted"))
    assert args[:6] == ["uv", "run", "--frozen", "--extra", "all", "python"] and args[6] == "jobs/retrain.py"
    env = r.runtime_env()
    assert env["working_dir"] == str(root)
    assert env["env_vars"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert env["env_vars"]["UV_PROJECT_ENVIRONMENT"]  # jobs/runtime_env.yaml's, as every job has
    plain = retrainer(Jobs(), tracking_uri="http://mlflow:5000").runtime_env()
    assert plain == {"env_vars": {"MLFLOW_TRACKING_URI": "http://mlflow:5000"}}
