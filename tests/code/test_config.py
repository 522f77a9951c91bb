"""AppConfig: YAML loading, validation errors that name file and field, env overrides."""

import pytest

from app.config import AppConfig, ConfigError


def test_defaults_load_from_an_empty_mapping():
    cfg = AppConfig.from_dict({}, env={})
    assert cfg.train.family == "xgboost"
    assert cfg.ray.address is None


def test_yaml_sections_are_read(tmp_path):
    path = tmp_path / "automl.yaml"
    path.write_text("train:\n  family: lightgbm\n  num_workers: 2\ndata:\n  valid_fraction: 0.25\n")
    cfg = AppConfig.from_yaml(path, env={})
    assert (cfg.train.family, cfg.train.num_workers, cfg.data.valid_fraction) == ("lightgbm", 2, 0.25)


def test_unknown_key_is_an_error_naming_file_and_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  num_wrokers: 2\n")
    with pytest.raises(ConfigError) as err:
        AppConfig.from_yaml(path, env={})
    assert str(path) in str(err.value)
    assert "train.num_wrokers: unknown key" in str(err.value)


def test_invalid_value_names_the_field_and_value(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  family: randomforest\ndata:\n  valid_fraction: 1.5\n")
    with pytest.raises(ConfigError) as err:
        AppConfig.from_yaml(path, env={})
    message = str(err.value)
    assert "train.family" in message and "randomforest" in message
    assert "data.valid_fraction" in message


def test_missing_file_and_bad_yaml_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        AppConfig.from_yaml(tmp_path / "nope.yaml")
    bad = tmp_path / "broken.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        AppConfig.from_yaml(bad)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping of sections"):
        AppConfig.from_yaml(listed)


def test_env_overrides_endpoints():
    env = {
        "RAY_ADDRESS": "ray-head:6380",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_REGION": "eu-west-3",
        "REDIS_URL": "redis://cache:6379/1",
        "MLFLOW_TRACKING_URI": "http://mlflow:5000",
    }
    cfg = AppConfig.from_dict({"ray": {"address": "from-file:1"}}, env=env)
    assert cfg.ray.address == "ray-head:6380"
    assert cfg.data.s3.endpoint_url == "http://127.0.0.1:9000"
    assert cfg.data.s3.region == "eu-west-3"
    assert cfg.serve.redis_url == "redis://cache:6379/1"
    assert cfg.tracking.tracking_uri == "http://mlflow:5000"


def test_file_values_stay_when_env_is_silent():
    cfg = AppConfig.from_dict({"ray": {"address": "from-file:1"}}, env={})
    assert cfg.ray.address == "from-file:1"
