"""``automl fit`` and the commands after it take their endpoints from the environment and ``--config``,
as the README's endpoint table says: one small fit tracked on a real ``mlflow server`` named only by
``MLFLOW_TRACKING_URI``, registered because the config file names the model."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from app.cli import app
from app.config import AppConfig
from app.data.synthetic import make_frame, write_parquet
from app.search.settings import RayTuneSettings
from app.tracking.registry import CHAMPION, ModelRegistry

ROOT = Path(__file__).resolve().parents[2]
SEARCH = {
    "num_samples": 3,
    "max_rounds": 30,
    "families": ["xgboost", "lightgbm"],
    "scheduler": "fifo",
    "search_algorithm": "random",
    "cv_folds": 0,
    "ensemble_size": 2,
}


@dataclass
class TrackedFit:
    out: Path
    data: Path
    name: str
    experiment: str
    tracking_uri: str
    output: str


def invoke(*args: str, env: dict[str, str]):
    return CliRunner().invoke(app, list(args), env=env)


@pytest.fixture(scope="module")
def tracked_fit(ray_session, mlflow_url, tmp_path_factory) -> TrackedFit:
    """``automl fit --config automl.yaml`` with the tracking server given only by the environment."""
    tmp = tmp_path_factory.mktemp("fit-cli")
    data = tmp / "data"
    write_parquet(make_frame(1_200, task="binary", seed=3), data, files=1)
    name, experiment = f"fit-cli-{uuid.uuid4().hex[:8]}", f"fit-cli-exp-{uuid.uuid4().hex[:8]}"
    config = tmp / "automl.yaml"
    config.write_text(
        yaml.safe_dump(
            {"search": SEARCH, "tracking": {"experiment_name": experiment, "registered_model_name": name}}
        )
    )
    out = tmp / "run"
    result = invoke(
        "fit", str(data), "--target", "y", "--out", str(out), "--config", str(config),
        env={"MLFLOW_TRACKING_URI": mlflow_url},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return TrackedFit(out, data, name, experiment, mlflow_url, result.output)


def test_fit_logs_the_parent_and_trial_runs_to_the_server_in_MLFLOW_TRACKING_URI(tracked_fit):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracked_fit.tracking_uri)
    experiment = client.get_experiment_by_name(tracked_fit.experiment)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("automl.kind") == "search"]
    assert len(parents) == 1
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(trials) == SEARCH["num_samples"]
    assert not (tracked_fit.out / "mlflow.db").exists()


def test_fit_with_a_config_searches_as_its_search_section_says(tracked_fit):
    board = pd.read_csv(tracked_fit.out / "leaderboard.csv")
    assert len(board) == SEARCH["num_samples"]
    assert set(board.family) <= set(SEARCH["families"])


def test_fit_with_a_registered_model_name_registers_it_as_champion(tracked_fit):
    registry = ModelRegistry(tracking_uri=tracked_fit.tracking_uri)
    champion = registry.version_for(tracked_fit.name, CHAMPION)
    assert champion is not None and champion.version == "1"
    assert f"registered: {tracked_fit.name} version 1" in tracked_fit.output


def test_predict_loads_a_registered_model_from_MLFLOW_TRACKING_URI(tracked_fit, tmp_path):
    out = tmp_path / "preds.parquet"
    uri = f"models:/{tracked_fit.name}@{CHAMPION}"
    result = invoke(
        "predict", uri, str(tracked_fit.data), "--out", str(out),
        env={"MLFLOW_TRACKING_URI": tracked_fit.tracking_uri},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(pd.read_parquet(out)) == 1_200


def test_predict_with_an_alias_nobody_set_names_it_and_exits_2(tracked_fit, tmp_path):
    uri = f"models:/{tracked_fit.name}@nobody-set-this"
    result = invoke(
        "predict", uri, str(tracked_fit.data), "--out", str(tmp_path / "p.parquet"),
        env={"MLFLOW_TRACKING_URI": tracked_fit.tracking_uri},
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {uri}: ") and "nobody-set-this" in result.stderr
    assert not (tmp_path / "p.parquet").exists()


def test_models_list_reads_MLFLOW_TRACKING_URI(tracked_fit):
    result = invoke("models", "list", tracked_fit.name, env={"MLFLOW_TRACKING_URI": tracked_fit.tracking_uri})
    assert result.exit_code == 0, result.output
    assert "champion" in result.output.splitlines()[1]


def test_report_loads_a_registered_model_from_MLFLOW_TRACKING_URI(tracked_fit):
    uri = f"models:/{tracked_fit.name}@{CHAMPION}"
    result = invoke(
        "report", str(tracked_fit.out), "--model", uri, env={"MLFLOW_TRACKING_URI": tracked_fit.tracking_uri}
    )
    assert result.exit_code == 0, result.output
    assert (tracked_fit.out / "report" / "report.html").exists()


def test_job_options_override_the_config_and_the_rest_keeps_it(tmp_path, monkeypatch):
    """jobs/automl.py parses with `automl fit`'s own parser: the settings its options make."""
    import sys

    import app.search.api

    sys.path.insert(0, str(ROOT / "jobs"))
    import _entry

    class Captured(Exception):
        pass

    def capture(
        data,
        *,
        target,
        config,
        out_dir,
        task=None,
        resume=False,
        notify=None,
        progress=None,
        started=None,
        **overrides,
    ):
        raise Captured(RayTuneSettings.from_config(config, **overrides))  # what run_fit builds first

    monkeypatch.setattr(app.search.api, "run_fit", capture)
    monkeypatch.setenv("RAY_ADDRESS", "head:6380")
    config = tmp_path / "automl.yaml"
    config.write_text(yaml.safe_dump({"search": {"num_samples": 7, "scheduler": "fifo"}}))
    argv = ["d", "--target", "y", "--config", str(config), "--max-rounds", "50", "--no-refit"]
    argv += ["--out", str(tmp_path / "fit")]
    with pytest.raises(Captured) as caught:
        _entry.invoke(["fit"], argv)
    settings = caught.value.args[0]

    assert (settings.num_samples, settings.scheduler) == (7, "fifo")
    assert (settings.max_rounds, settings.refit, settings.ray_address) == (50, False, "head:6380")
    assert settings.search_algorithm == RayTuneSettings().search_algorithm


def test_search_defaults_have_one_source():
    search = AppConfig.from_dict({}, env={}).search
    settings = RayTuneSettings.from_config(AppConfig.from_dict({}, env={}))
    assert settings.model_dump(exclude={"ray_address", "num_cpus", "num_gpus", "families"}) == (
        search.model_dump(exclude={"families"})
    )
    assert search.families is None and settings.families == ["xgboost", "lightgbm", "catboost"]
