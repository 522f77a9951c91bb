"""GPU requests on this CPU-only machine fail early and say why."""

from __future__ import annotations

import pytest

from app.config import TrainConfig
from app.train import GPUUnavailableError, train
from tests.train.conftest import datasets, preprocessor


@pytest.mark.parametrize("family", ["xgboost", "lightgbm", "catboost"])
def test_use_gpu_without_a_gpu_in_the_cluster_is_a_clear_error(ray_session, family):
    if ray_session.cluster_resources().get("GPU", 0):
        pytest.skip("this cluster has a GPU")
    config = TrainConfig(family=family, use_gpu=True, num_boost_round=5)
    with pytest.raises(GPUUnavailableError, match="GPU"):
        train(datasets("binary", rows=200), config=config, preprocessor=preprocessor("binary"), num_rows=160)


def test_lightgbm_without_a_cuda_build_says_so():
    import lightgbm

    from app.train.lgbm import gpu_device_type

    try:
        device = gpu_device_type()
    except GPUUnavailableError as exc:
        assert "CUDA" in str(exc) and lightgbm.__version__ in str(exc)
    else:
        assert device == "cuda"


def test_gpu_parameters_per_family():
    from app.train import cat, xgb
    from app.train.common import resolve_metrics

    metrics = resolve_metrics("xgboost", "binary", None)
    common = dict(task="binary", num_classes=2, metrics=metrics, threads=1, use_gpu=True, params={})
    assert xgb.build_params(objective="binary:logistic", **common)["device"] == "cuda"
    cat_metrics = resolve_metrics("catboost", "binary", None)
    params = cat.build_params(objective="Logloss", **{**common, "metrics": cat_metrics})
    assert params["task_type"] == "GPU"
