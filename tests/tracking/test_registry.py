"""Registry: versions, champion/challenger aliases, the promotion rule and rollback, on a real server."""

from __future__ import annotations

import pytest

from app.tracking.registry import CHALLENGER, CHAMPION, ModelRegistry, holdout_metric
from app.train.metrics import get_metric

from .conftest import register


@pytest.fixture
def registry(mlflow_url) -> ModelRegistry:
    return ModelRegistry(tracking_uri=mlflow_url)


def test_each_registration_is_a_new_version_first_champion_then_challenger(
    registry, logged_pipelines, unique_name
):
    v1 = register(registry, unique_name, logged_pipelines)
    v2 = register(registry, unique_name, logged_pipelines, "lightgbm")

    assert (v1.version, v2.version) == ("1", "2")
    assert registry.version_for(unique_name, CHAMPION).version == "1"
    assert registry.version_for(unique_name, CHALLENGER).version == "2"
    assert registry.version_for(unique_name, CHAMPION).tags["reason"] == "no champion yet"
    assert [v.version for v in registry.versions(unique_name)] == ["1", "2"]


def test_challenger_not_promoted_when_the_gain_is_below_the_margin(registry, logged_pipelines, unique_name):
    register(registry, unique_name, logged_pipelines)
    register(registry, unique_name, logged_pipelines, "lightgbm")

    decision = registry.promote(
        unique_name, metric="auc", candidate_value=0.905, champion_value=0.900, margin=0.01, by="ci-bot"
    )

    assert not decision.promoted
    assert registry.version_for(unique_name, CHAMPION).version == "1"
    assert registry.version_for(unique_name, CHALLENGER).version == "2"
    tags = registry.client.get_model_version(unique_name, "2").tags
    assert tags["decision"] == "refused"
    assert tags["decided_by"] == "ci-bot"
    assert (tags["challenger_value"], tags["champion_value"], tags["margin"]) == ("0.905", "0.9", "0.01")
    assert "does not meet margin 0.01" in tags["reason"]
    assert "promoted_by" not in tags


def test_challenger_promoted_when_it_beats_the_champion_by_the_margin(
    registry, logged_pipelines, unique_name
):
    register(registry, unique_name, logged_pipelines)
    register(registry, unique_name, logged_pipelines, "lightgbm")

    decision = registry.promote(
        unique_name,
        metric="logloss",
        candidate_value=0.20,
        champion_value=0.25,
        margin=0.01,
        mode="min",
        by="ana",
    )

    assert decision.promoted and decision.champion_version == "1"
    assert registry.version_for(unique_name, CHAMPION).version == "2"
    assert registry.version_for(unique_name, CHALLENGER) is None
    tags = registry.client.get_model_version(unique_name, "2").tags
    assert tags["decision"] == "promoted"
    assert tags["promoted_by"] == "ana"
    assert tags["previous_champion"] == "1"
    assert (tags["metric"], tags["challenger_value"], tags["champion_value"]) == ("logloss", "0.2", "0.25")
    assert registry.client.get_model_version(unique_name, "1").tags["replaced_by"] == "2"


def test_promotion_scores_both_versions_on_the_same_holdout(
    registry, logged_pipelines, unique_name, holdout, xgb_dir, lgb_dir, mlflow_url
):
    from app.train.load import load_model

    register(registry, unique_name, logged_pipelines)  # xgboost: champion
    register(registry, unique_name, logged_pipelines, "lightgbm")  # challenger
    fn = holdout_metric(holdout, target="y", metric="logloss", tracking_uri=mlflow_url)

    decision = registry.promote(unique_name, metric="logloss", holdout_metric_fn=fn, margin=0.0, mode="min")

    y = holdout["y"].to_numpy()
    expected = {
        "xgboost": get_metric("logloss").score(y, load_model(xgb_dir).predict_proba(holdout)),
        "lightgbm": get_metric("logloss").score(y, load_model(lgb_dir).predict_proba(holdout)),
    }
    assert decision.candidate_value == pytest.approx(expected["lightgbm"])
    assert decision.champion_value == pytest.approx(expected["xgboost"])
    assert decision.promoted == (expected["lightgbm"] < expected["xgboost"])


def test_rollback_restores_the_previous_champion(registry, logged_pipelines, unique_name):
    register(registry, unique_name, logged_pipelines)
    register(registry, unique_name, logged_pipelines, "lightgbm")
    registry.promote(unique_name, candidate_value=0.9, champion_value=0.8)
    assert registry.version_for(unique_name, CHAMPION).version == "2"

    result = registry.rollback(unique_name, by="oncall", reason="latency regression")

    assert (result.from_version, result.to_version) == ("2", "1")
    assert registry.version_for(unique_name, CHAMPION).version == "1"
    tags = registry.client.get_model_version(unique_name, "2").tags
    assert (tags["decision"], tags["rolled_back_by"], tags["rollback_reason"]) == (
        "rolled_back",
        "oncall",
        "latency regression",
    )
    with pytest.raises(ValueError, match="records no previous champion"):
        registry.rollback(unique_name)
