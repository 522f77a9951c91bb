"""Every ``jobs/*.py`` stage as the README submits it: the real ``ray job submit`` CLI, a token-auth
``ray start --head`` on non-default ports whose PATH has no project Python, ``--runtime-env
jobs/runtime_env.yaml`` and ``uv run`` as the entrypoint; then what the dashboard's state API shows.

The stages chain (prep -> train -> batch_predict, automl on prep's output, deploy of train's model) on a
few hundred rows. The upload is a fresh clone (tracked and new files) holding a ``data/``, ``runs/`` and
``.venv/`` of its own, to see them left out. The job environment is this test's own venv
(``UV_PROJECT_ENVIRONMENT`` + ``UV_NO_SYNC``): building one from uv.lock is uv's work and takes minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

from app.data.synthetic import make_frame
from app.testing import ray_cluster, services
from app.testing.wait import wait_until

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).parent / "ray")
ROWS = 400
LEFT_OUT = ("data", "runs", ".venv", ".git")


@pytest.fixture(scope="module")
def dashboard_hosts() -> dict[str, str]:
    """The ``RAY_PROMETHEUS_HOST`` / ``RAY_GRAFANA_HOST`` the head starts with."""
    return {
        "RAY_PROMETHEUS_HOST": f"http://127.0.0.1:{services.free_port()}",
        "RAY_GRAFANA_HOST": f"http://127.0.0.1:{services.free_port()}",
    }


@pytest.fixture(scope="module")
def head(dashboard_hosts):
    """Token auth on, as outside tests; the cluster's PATH without this venv (a bare `python` first), and
    the dashboard pointed at a real Prometheus and at a Grafana address."""
    if shutil.which("uv") is None:
        pytest.fail("uv is not on PATH: the jobs' entrypoint is `uv run` (pip install uv)")
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != venv_bin)
    with ray_cluster.ray_head(num_cpus=2, auth=True, env={"PATH": path, **dashboard_hosts}) as h:
        discovery = Path(h.temp_dir) / "prom_metrics_service_discovery.json"
        prom_port = int(dashboard_hosts["RAY_PROMETHEUS_HOST"].rsplit(":", 1)[1])
        with services.prometheus(service_discovery=discovery, port=prom_port):
            yield h


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A fresh clone with data, runs and a venv in it, and the runtime env the README's commands use."""
    wd = tmp_path_factory.mktemp("clone")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        if (REPO / name).is_file():
            (wd / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, wd / name)
    for folder in LEFT_OUT[:3]:
        (wd / folder).mkdir()
        (wd / folder / "must-not-upload.bin").write_bytes(b"x" * 1024)
    make_frame(ROWS, task="binary").to_csv(wd / "data" / "train.csv", index=False)
    runtime_env = yaml.safe_load((wd / "jobs" / "runtime_env.yaml").read_text())
    runtime_env["env_vars"].update(UV_PROJECT_ENVIRONMENT=sys.prefix, UV_NO_SYNC="1")
    (wd / "runtime_env.test.yaml").write_text(yaml.safe_dump(runtime_env))
    return wd


def submit(head, workdir: Path, stage: str, script: str, *args: str, metadata: dict | None = None):
    """``ray job submit`` as the README writes it; the job's submission id and its JSON summary."""
    submission_id = f"{stage}-{uuid.uuid4().hex[:8]}"
    cmd = [
        RAY, "job", "submit", "--address", head.dashboard_url,
        "--runtime-env", "runtime_env.test.yaml", "--working-dir", ".",
        "--submission-id", submission_id,
        "--metadata-json", json.dumps({"stage": stage, **(metadata or {})}),
        "--", "uv", "run", "--frozen", "--extra", "all", "python", f"jobs/{script}", *args,
    ]  # fmt: skip
    proc = run_cli(cmd, cwd=workdir, env=client_env(head), timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    return submission_id, json.loads(lines[-1])


def client_env(head) -> dict[str, str]:
    """A client's environment as the README sets it: the token mode and where the token is, no RAY_ADDRESS
    (the CLIs prefer it to --address and would look the dashboard up through the GCS)."""
    env = {**os.environ, **head.env()}
    env.pop("RAY_ADDRESS")
    return env


def run_cli(cmd: list[str], *, cwd: Path, env: dict, timeout: float) -> subprocess.CompletedProcess:
    """``cmd`` run to its end, and again every 5 s while a busy head answers "No available agent" (its job
    agent has not registered yet); any other outcome, failures included, is returned."""

    def past_the_agent() -> subprocess.CompletedProcess:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0 and "No available agent" in proc.stdout + proc.stderr:
            raise RuntimeError(f"no job agent yet: {(proc.stdout + proc.stderr)[-2000:]}")
        return proc

    return wait_until(
        past_the_agent, timeout_s=120, interval_s=5, what=f"`ray {' '.join(cmd[1:3])}` with a job agent"
    )


def state(head, kind: str) -> list[dict]:
    """``ray list KIND --detail`` from the dashboard's state API, as the CLI prints it."""
    cmd = [
        RAY,
        "list",
        kind,
        "--address",
        head.dashboard_url,
        "--detail",
        "--format",
        "json",
        "--limit",
        "1000",
    ]
    proc = subprocess.run(cmd, env=client_env(head), capture_output=True, text=True, timeout=60, check=True)
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> Path:
    """Where the jobs write: a path every node reaches (one machine here; S3 on a real cluster)."""
    return tmp_path_factory.mktemp("job-outputs")


@pytest.fixture(scope="module")
def prepped(head, workdir, outputs):
    data = workdir / "data" / "train.csv"  # the clone's data/: read in place, never uploaded
    return submit(
        head, workdir, "prep", "prep.py", str(data), str(outputs / "data"), metadata={"dataset": "train.csv"}
    )


@pytest.fixture(scope="module")
def trained(head, workdir, outputs, prepped):
    args = [str(outputs / "data"), "--target", "y", "--rounds", "8", "--out", str(outputs / "model")]
    return submit(head, workdir, "train", "train.py", *args, metadata={"dataset": "data", "model": "model"})


def test_a_client_without_the_token_mode_is_refused_with_the_variable_to_set(head, workdir):
    cmd = [RAY, "job", "submit", "--address", head.dashboard_url, "--working-dir", ".", "--", "true"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    proc = run_cli(cmd, cwd=workdir, env=env, timeout=60)
    assert proc.returncode != 0
    assert "RAY_AUTH_MODE" in proc.stdout + proc.stderr


def test_prep_job_writes_parquet_and_names_its_stage(prepped, outputs):
    submission_id, summary = prepped
    assert summary["stage"] == "prep" and summary["submission_id"] == submission_id
    assert summary["metadata"] == {"stage": "prep", "dataset": "train.csv"}
    assert summary["rows"] == ROWS
    assert list((outputs / "data").rglob("*.parquet"))


def test_the_upload_leaves_out_data_runs_the_venv_and_git(head, prepped):
    unpacked = Path(head.temp_dir) / "session_latest" / "runtime_resources" / "working_dir_files"
    packages = [p for p in unpacked.glob("_ray_pkg_*") if p.is_dir()]
    assert packages, "no unpacked working dir on the head"
    for package in packages:
        names = {p.name for p in package.iterdir()}
        assert {"app", "jobs", "uv.lock", "pyproject.toml"} <= names
        assert not names & set(LEFT_OUT), names & set(LEFT_OUT)


def test_train_job_saves_a_native_model(trained, outputs):
    submission_id, summary = trained
    assert submission_id.startswith("train-") and summary["stage"] == "train"
    assert summary["family"] == "xgboost" and summary["num_rounds"] == 8
    assert (outputs / "model" / "model.ubj").exists()


def test_batch_predict_job_scores_every_row(head, workdir, outputs, prepped, trained):
    out = outputs / "preds.parquet"
    args = [str(outputs / "model"), str(outputs / "data"), "--out", str(out)]
    _, summary = submit(
        head, workdir, "batch_predict", "batch_predict.py", *args, metadata={"model": "model"}
    )
    import pyarrow.parquet as pq

    assert summary["rows"] == ROWS == pq.read_table(out).num_rows


@pytest.fixture(scope="module")
def searched(head, workdir, outputs, prepped):
    """Two Tune trials of at most 20 rounds: no --time-budget, whose short windows train one model in the
    driver instead (no trial actors to find) and depend on the machine's load."""
    args = [
        str(outputs / "data"), "--target", "y", "--families", "xgboost",
        "--num-samples", "2", "--max-concurrent", "1", "--max-rounds", "20", "--cv-folds", "0",
        "--no-refit", "--out", str(outputs / "automl"),
    ]  # fmt: skip
    return submit(head, workdir, "automl", "automl.py", *args, metadata={"dataset": "data"})


def test_automl_job_runs_a_small_search(searched):
    _, summary = searched
    assert summary["stage"] == "automl" and summary["trials"] >= 1
    assert Path(summary["model_dir"]).is_dir()


@pytest.fixture(scope="module")
def deployed(head, workdir, outputs, trained):
    port = services.free_port()
    args = [str(outputs / "model"), "--config", "serve_config.yaml", "--port", str(port)]
    submission_id, summary = submit(head, workdir, "deploy", "deploy.py", *args, metadata={"model": "model"})
    assert summary["url"] == f"http://127.0.0.1:{port}"
    return submission_id, summary


def test_deploy_job_leaves_the_service_answering(deployed):
    _, summary = deployed
    rows = make_frame(50, task="binary").drop(columns=["y"]).to_dict("records")
    body = json.dumps({"dataframe_records": rows}, default=str).encode()
    req = urllib.request.Request(
        f"{summary['url']}/predict", data=body, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        assert len(json.loads(resp.read())["predictions"]) == 50


def test_jobs_are_listed_with_their_stage_and_metadata(head, prepped, trained, searched, deployed):
    jobs = {j["submission_id"]: j for j in state(head, "jobs") if j.get("submission_id")}
    for submission_id, summary in (prepped, trained, searched, deployed):
        job = jobs[submission_id]
        assert job["status"] == "SUCCEEDED"
        assert job["metadata"]["stage"] == summary["stage"] == submission_id.split("-")[0]
    assert jobs[trained[0]]["metadata"]["model"] == "model"


def test_the_dashboard_names_every_actor_the_stages_started(head, trained, searched, deployed):
    """Tune trials, the Train run (its controller and workers, and its name on the Train page), Serve's
    replica and the model's monitor."""
    actors: list[dict] = []

    def monitor_listed() -> bool:  # the monitor actor starts with the replica's first sample batch
        actors[:] = state(head, "actors")
        return any((a.get("name") or "").startswith("automl-monitor:") for a in actors)

    try:
        wait_until(monitor_listed, timeout_s=30, interval_s=1, what="the model's automl-monitor: actor")
    except TimeoutError as exc:
        pytest.fail(f"{exc}; actors named {sorted(a.get('name') or '' for a in actors)}")
    classes = {a["class_name"] for a in actors}
    assert "ImplicitFunc" not in classes, "Tune trials still show as ImplicitFunc"
    assert "AutoMLTrial" in classes
    assert {"TrainController", "RayTrainWorker"} <= classes
    assert "ServeReplica:automl:ModelServer" in classes
    req = urllib.request.Request(f"{head.dashboard_url}/api/train/v2/runs/v1", headers=head.headers())
    with urllib.request.urlopen(req, timeout=60) as resp:
        runs = [r["name"] for r in json.loads(resp.read())["train_runs"]]
    assert any(r.startswith("model-xgboost-") for r in runs), runs  # the train job's --out .../model


def test_the_dashboard_reaches_prometheus_and_knows_grafana(head, dashboard_hosts):
    req = urllib.request.Request(f"{head.dashboard_url}/api/prometheus_health", headers=head.headers())
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert json.loads(resp.read())["result"] is True
    req = urllib.request.Request(f"{head.dashboard_url}/api/grafana_health", headers=head.headers())
    grafana = dashboard_hosts["RAY_GRAFANA_HOST"]
    try:
        urllib.request.urlopen(req, timeout=30)
    except urllib.error.HTTPError as exc:  # no Grafana here: the dashboard tried the address it was given
        text = exc.read().decode()
        assert "Grafana healthcheck failed" in text and grafana.rsplit(":", 1)[-1] in text
