"""The production layout: ``mlflow server`` with the machine's PostgreSQL as backend store and the moto S3
endpoint as proxied artifact store (and the same with SQLite, which needs no driver)."""

from __future__ import annotations

import subprocess
import uuid

import numpy as np
import pytest

from app.config import TrackingConfig
from app.testing import services
from app.tracking.registry import load_pyfunc
from app.tracking.tracker import MLflowTracker
from app.train.load import load_model

PG = ["-h", "127.0.0.1", "-p", "5432", "-U", "postgres"]


@pytest.fixture(params=["postgresql", "sqlite"])
def backend_uri(request, tmp_path):
    """A fresh PostgreSQL database on the machine's server (dropped afterwards), or a SQLite file."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'backend.db'}"
        return
    # The machine's PostgreSQL (CI has it, trust auth); psycopg (v3) is a declared dependency.
    name = f"mlflow_test_{uuid.uuid4().hex[:10]}"
    subprocess.run(["createdb", *PG, name], check=True, capture_output=True)
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    subprocess.run(["dropdb", *PG, "--force", name], check=False, capture_output=True)


@pytest.mark.slow
@pytest.mark.s3
def test_backend_store_and_s3_artifacts(backend_uri, s3_endpoint, s3_bucket, tmp_path, xgb_dir, holdout):
    env = s3_endpoint.env() | {"MLFLOW_S3_ENDPOINT_URL": s3_endpoint.endpoint_url}
    with services.mlflow_server(
        backend_store_uri=backend_uri, artifacts_destination=f"s3://{s3_bucket}/mlflow", env=env
    ) as url:
        tracker = MLflowTracker(
            TrackingConfig(tracking_uri=url, experiment_name="pg-s3", registered_model_name="pg-s3-model"),
            run_dir=tmp_path,
        )
        parent = tracker.start_run("automl")
        trial = tracker.log_trial(parent, "xgboost", {"eta": 0.1}, [0.5, 0.4, 0.3], 3, "completed")
        logged = tracker.log_model(xgb_dir, input_example=holdout.head(3))
        tracker.end_run()

        history = [m.value for m in tracker.client.get_metric_history(trial, "valid_metric")]
        assert history == [0.5, 0.4, 0.3]
        assert logged.registered_version == "1"
        champion = load_pyfunc("models:/pg-s3-model@champion", tracking_uri=url)
        np.testing.assert_array_equal(
            champion.predict(holdout.drop(columns=["y"])), load_model(xgb_dir).predict(holdout)
        )

    keys = [
        o["Key"] for o in s3_endpoint.client().list_objects_v2(Bucket=s3_bucket, Prefix="mlflow/")["Contents"]
    ]
    assert any(k.endswith("/MLmodel") for k in keys)
    assert any(k.endswith("/model.ubj") for k in keys)
    if backend_uri.startswith("postgresql"):
        runs = subprocess.run(
            ["psql", *PG, "-d", backend_uri.rsplit("/", 1)[1], "-tAc", "select count(*) from runs"],
            check=True,
            capture_output=True,
            text=True,
        )
        assert int(runs.stdout.strip()) == 2
