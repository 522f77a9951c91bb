"""Secrets never reach MLflow or the messages: a config or params holding a Redis password URL, an API key
or an AWS secret is logged with those values masked, and an unreachable server's warning hides the
password in its URI."""

from __future__ import annotations

import logging

import pytest

from app.config import AppConfig, ConfigError, TrackingConfig
from app.testing.services import free_port
from app.tracking.tracker import MLflowTracker, TrackingOfflineWarning

REDIS_PASSWORD, API_KEY, AWS_SECRET, PG_PASSWORD = "r3dis-pw-1", "k3y-2", "aws-s3cret-3", "pg-pw-4"
SECRETS = (REDIS_PASSWORD, API_KEY, AWS_SECRET, PG_PASSWORD)


def test_secrets_in_config_and_params_are_masked_in_mlflow(tracker):
    config = AppConfig.from_dict(
        {
            "serve": {
                "redis_url": f"rediss://default:{REDIS_PASSWORD}@cache:6380/0",
                "api_key_env": "AUTOML_KEY",
            }
        },
        env={},
    )
    parent = tracker.start_run("fit", tags={"env.AWS_SECRET_ACCESS_KEY": AWS_SECRET})
    tracker.log_params(
        {
            "serve": config.serve.model_dump(),
            "api_key": API_KEY,
            "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
            "backend": f"postgresql://mlflow:{PG_PASSWORD}@db:5432/mlflow",
            "max_depth": 6,
        }
    )
    child = tracker.log_trial(
        parent,
        "xgboost",
        {"eta": 0.1, "redis_url": f"redis://:{REDIS_PASSWORD}@cache:6379/0", "token": API_KEY},
        [0.5, 0.4],
        2,
        "completed",
    )
    tracker.end_run()

    logged = ""
    for run_id in (parent, child):
        data = tracker.client.get_run(run_id).data
        logged += repr(data.params) + repr(data.tags)
    assert not [s for s in SECRETS if s in logged], logged
    params = tracker.client.get_run(parent).data.params
    assert params["max_depth"] == "6" and params["api_key"] == "***"
    assert "cache:6380/0" in params["serve"] and "AUTOML_KEY" in params["serve"]  # what is not secret stays
    assert params["backend"] == "postgresql://mlflow:***@db:5432/mlflow"


def test_unreachable_server_warning_hides_the_uri_password(tmp_path, caplog):
    uri = f"http://automl:{PG_PASSWORD}@127.0.0.1:{free_port()}"
    tracker = MLflowTracker(TrackingConfig(tracking_uri=uri, connect_timeout_s=0.5), run_dir=tmp_path)
    with caplog.at_level(logging.WARNING), pytest.warns(TrackingOfflineWarning) as warned:
        tracker.start_run("fit")
        tracker.end_run()
    shown = caplog.text + " ".join(str(w.message) for w in warned)
    assert "automl:***@127.0.0.1" in shown
    assert PG_PASSWORD not in shown
    assert PG_PASSWORD not in tracker.display_uri


def test_a_config_error_does_not_echo_a_password():
    with pytest.raises(ConfigError, match="tracking.tracking_uri") as error:
        AppConfig.from_dict(
            {"tracking": {"tracking_uri": [f"http://automl:{PG_PASSWORD}@mlflow:5000"]}}, env={}
        )
    assert PG_PASSWORD not in str(error.value) and "automl:***@mlflow" in str(error.value)
